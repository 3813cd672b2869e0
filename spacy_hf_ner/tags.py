"""Tag schemes of token-classification labels (BIO, BIOES, BILUO, bare).

Pure logic: no spaCy, no torch.
"""
from typing import Iterable, List, Optional, Sequence, Tuple

from .ty import Scheme

_BIOES = frozenset("BIOES")
_BILUO = frozenset("BILUO")


def hf_get_tag(label: str) -> Tuple[str, str]:
    """Split a label exactly as transformers' `TokenClassificationPipeline.get_tag`.

    "B-PER" -> ("B", "PER"), "I-PER" -> ("I", "PER"), anything else -> ("I", label):
    a label without a B-/I- prefix continues a run of the same label.
    """
    if label.startswith("B-"):
        return "B", label[2:]
    if label.startswith("I-"):
        return "I", label[2:]
    return "I", label


def entity_type(label: str) -> str:
    """The entity type of a label, as transformers names an entity group:
    everything after the first hyphen ("B-WORK-OF-ART" -> "WORK-OF-ART"), or the
    whole label when it has none."""
    return label.split("-", 1)[-1]


def detect_scheme(labels: Iterable[str], outside: Iterable[str] = ("O",)) -> Scheme:
    """Guess the tag scheme from a model's label set.

    BIOES/BILUO are recognised only when every non-outside label carries one of
    their one-letter prefixes and at least one of the prefixes that BIO lacks is
    present; everything else is decoded with transformers' BIO rules.
    """
    outside = set(outside)
    prefixes = set()
    for label in labels:
        if label in outside:
            continue
        if len(label) < 3 or label[1] != "-":
            return "bio"
        prefixes.add(label[0])
    if prefixes <= _BIOES and prefixes & {"E", "S"}:
        return "bioes"
    if prefixes <= _BILUO and prefixes & {"L", "U"}:
        return "biluo"
    return "bio"


def split_tag(label: str, scheme: Scheme) -> Tuple[str, str]:
    """Split a label into (prefix, type) under `scheme`.

    The prefix is one of "B" (begin), "I" (inside), "E" (end) or "S" (single);
    BILUO's L and U are mapped to E and S. Labels without a prefix of the scheme
    are treated as "I" of their own type, like transformers does.
    """
    if scheme == "bio":
        return hf_get_tag(label)
    if len(label) > 2 and label[1] == "-":
        prefix = label[0]
        if scheme == "biluo":
            prefix = {"L": "E", "U": "S"}.get(prefix, prefix)
        if prefix in ("B", "I", "E", "S"):
            return prefix, label[2:]
    return "I", label


_FROM_BILUO = {
    "bio": {"B": "B", "I": "I", "L": "I", "U": "B"},
    "bioes": {"B": "B", "I": "I", "L": "E", "U": "S"},
    "biluo": {"B": "B", "I": "I", "L": "L", "U": "U"},
}


def from_biluo(tag: str, scheme: Scheme, outside: str = "O") -> str:
    """Rewrite one of spaCy's BILUO tags ("U-PER", "L-ORG", "O") in `scheme`:
    BIO turns U into B and L into I, BIOES turns L into E and U into S."""
    if tag == "O" or len(tag) < 3 or tag[1] != "-":
        return outside if tag == "O" else tag
    return f"{_FROM_BILUO[scheme][tag[0]]}-{tag[2:]}"


def bio_labels(types: Iterable[str], outside: str = "O") -> Tuple[str, ...]:
    """The IOB2 label set of a new classification head: outside first, then
    B-/I- of each entity type in sorted order (as the transformers guide builds
    `id2label` for CoNLL)."""
    labels = [outside]
    for t in sorted(set(types)):
        labels.extend((f"B-{t}", f"I-{t}"))
    return tuple(labels)


def transition_constraints(
    labels: Sequence[str], scheme: Scheme
) -> Tuple[List[bool], List[List[bool]], List[bool]]:
    """Which label sequences are well formed under `scheme`, for constrained
    (Viterbi) decoding.

    RETURNS: (start, allowed, end): `start[j]` whether a sequence may begin with
    label j, `allowed[i][j]` whether label j may follow label i, `end[i]` whether
    a sequence may end with label i.

    BIO: "I-T" may only follow "B-T" or "I-T" (never start a sequence).
    BIOES/BILUO: also "E-T" (or "L-T") may only follow "B-T"/"I-T", and "B-T"/"I-T"
    must be followed by "I-T"/"E-T" of the same type (never end a sequence).
    Labels without a prefix of the scheme ("O", bare tags) are free everywhere.
    """
    n = len(labels)
    parts: List[Tuple[Optional[str], str]] = []
    for label in labels:
        prefixed = len(label) > 2 and label[1] == "-"
        if not prefixed:
            parts.append((None, label))
        elif scheme == "bio":
            parts.append((label[0] if label[0] in "BI" else None, label[2:]))
        else:
            prefix, typ = split_tag(label, scheme)
            # split_tag returns a label without the scheme's prefix whole
            parts.append((prefix, typ) if typ != label else (None, label))
    # continuing labels need an opener of their type just before them
    needs_open = [p in ("I", "E") if scheme != "bio" else p == "I" for p, _ in parts]
    # opening labels (BIOES/BILUO only) need a continuation just after them
    stays_open = [scheme != "bio" and p in ("B", "I") for p, _ in parts]
    start = [not needs_open[j] for j in range(n)]
    end = [not stays_open[i] for i in range(n)]
    allowed = [[False] * n for _ in range(n)]
    for i, (pi, ti) in enumerate(parts):
        opener = pi in ("B", "I")
        for j, (_, tj) in enumerate(parts):
            if needs_open[j]:
                allowed[i][j] = opener and ti == tj
            else:
                allowed[i][j] = not stays_open[i]
    return start, allowed, end
