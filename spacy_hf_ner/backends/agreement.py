"""How closely one backend's annotations follow another's: varied check texts,
item-level agreement (entities, tags, top categories) and the summary table
that `spacy-hf-ner export-onnx` prints. Pure logic: no spaCy, no torch.

    >>> texts = varied_texts(300)
    >>> result = agreement(want, got)  # per text: {(start, end, label): score}
    >>> result.f1, result.max_score_diff
"""
import random
from typing import Hashable, List, Mapping, NamedTuple, Sequence, Tuple

Items = Mapping[Hashable, float]  # one text's predictions: item -> score

PEOPLE = (
    "Angela Merkel", "Emmanuel Macron", "Barack Obama", "John Smith", "Mary Johnson",
    "José Álvarez", "Zoë Saldaña", "François Hollande", "Jürgen Müller", "Łukasz Kowalski",
    "Nguyễn Văn An", "Søren Kierkegaard", "Sarah Jessica Parker", "Jean-Claude Juncker",
    "O'Neill", "McDonald", "Wang Wei", "Björn Borg", "Aleksandr Solzhenitsyn", "Dr. Wei Chen",
)
ORGS = (
    "Google", "Microsoft", "Reuters", "the European Commission", "Deutsche Bank",
    "Hugging Face", "Coca-Cola", "AT&T", "the U.N.", "Manchester United", "Bayern München",
    "Société Générale", "NASA", "the Bundesbank", "Toyota Motor Corp.", "Real Madrid",
    "the World Health Organization", "Nestlé", "IBM", "Apple Inc.",
)
PLACES = (
    "Paris", "New York", "Berlin", "London", "São Paulo", "Baden-Württemberg", "Tokyo",
    "Zürich", "Kraków", "Washington", "the United States", "Germany", "Côte d'Ivoire",
    "Rio de Janeiro", "Hong Kong", "Seattle", "Brussels", "Reykjavík", "New South Wales", "Cairo",
)
MISC = (
    "German", "British", "French", "the World Cup", "the Olympics", "Euro 2024", "Windows",
    "Christmas", "the Nobel Prize", "Islamic", "Dutch", "the Tour de France", "Brexit", "Swiss",
)
NUMBERS = ("3", "1996", "2.5 percent", "$4.2 billion", "17-year-old", "No. 1", "1,250", "42", "7:30", "10-2")
TEMPLATES = (
    "{per} met {per2} in {loc} on Tuesday.",
    "{org} said on {day} it would cut {num} jobs in {loc}.",
    "{per} , who works for {org} , arrived in {loc} .",
    "{loc}-based {org} reported a profit of {num}.",
    "{misc} officials in {loc} rejected the {misc2} proposal.",
    "{per} ({org}) told reporters: \"{loc} is ready.\"",
    "{org} v {org2} {num} ( halftime {num2} )",
    "{per} won {misc} for {loc} in {num}.",
    "{loc} - {per} said {org} and {org2} had agreed.",
    "The {misc} team beat {loc} {num} .",
    "{per}'s {org} shares rose {num} in {loc}.",
    "Interview with {per}, CEO of {org}, at the {loc} office.",
    "{per}",
    "{org}",
    "{loc} , {day}",
    "In {loc}, {per} and {per2} of {org} discussed {misc}.",
    "email {per} at info@{org_word}.com or see https://www.{org_word}.com/{loc_word}",
    "{num} people were killed near {loc}, {org} reported.",
)
DAYS = ("Monday", "Tuesday", "Friday", "January 3", "12/05/1996", "the weekend")
CASINGS = ("as is", "as is", "as is", "lower", "upper", "title")


class Agreement(NamedTuple):
    """One run's predictions against another's.

    f1: item-level F1 of `got` against `want` (2 * common / (want + got),
        over all texts; 1.0 when neither has items).
    max_score_diff: the largest |score difference| of an item both have.
    want, got, common: item counts. texts, texts_differing: how many texts, and
        how many of them have different item sets.
    """

    f1: float
    max_score_diff: float
    want: int
    got: int
    common: int
    texts: int
    texts_differing: int

    @property
    def disagreement(self) -> float:
        return 1.0 - self.f1


def varied_texts(n: int, seed: int = 0) -> List[str]:
    """`n` varied English texts, the same for the same (n, seed): names,
    organisations and places (many non-ASCII, hyphenated or with
    abbreviations), numbers and dates, CoNLL-style spaced punctuation,
    lower/upper/title casing, one-word fragments up to multi-paragraph texts
    longer than a 256-token window."""
    rng = random.Random(seed)
    texts = []
    for i in range(n):
        kind = i % 10
        if kind == 9:  # long: several sentences, every 20th text several paragraphs
            count = rng.randint(25, 40) if i % 20 == 19 else rng.randint(3, 8)
            text = " ".join(_sentence(rng) for _ in range(count))
            if count > 20:
                text = text.replace(". ", ".\n\n", 3)
        else:
            text = _sentence(rng)
        texts.append(_case(text, rng.choice(CASINGS)))
    return texts


def _sentence(rng: random.Random) -> str:
    org = rng.choice(ORGS)
    loc = rng.choice(PLACES)
    return rng.choice(TEMPLATES).format(
        per=rng.choice(PEOPLE), per2=rng.choice(PEOPLE), org=org, org2=rng.choice(ORGS),
        loc=loc, misc=rng.choice(MISC), misc2=rng.choice(MISC), num=rng.choice(NUMBERS),
        num2=rng.choice(NUMBERS), day=rng.choice(DAYS),
        org_word="".join(c for c in org.split()[-1].lower() if c.isalnum()) or "example",
        loc_word="".join(c for c in loc.lower() if c.isalnum()) or "city",
    )


def _case(text: str, casing: str) -> str:
    if casing == "lower":
        return text.lower()
    if casing == "upper":
        return text.upper()
    if casing == "title":
        return text.title()
    return text


def agreement(want: Sequence[Items], got: Sequence[Items]) -> Agreement:
    """Compare two runs over the same texts, each text's predictions as
    {item: score} (e.g. (start_char, end_char, label) for entities)."""
    if len(want) != len(got):
        raise ValueError(f"the runs cover {len(want)} and {len(got)} texts; compare runs over the same texts")
    n_want = n_got = n_common = differing = 0
    max_diff = 0.0
    for a, b in zip(want, got):
        common = a.keys() & b.keys()
        n_want, n_got, n_common = n_want + len(a), n_got + len(b), n_common + len(common)
        differing += len(common) != len(a) or len(common) != len(b)
        for item in common:
            max_diff = max(max_diff, abs(a[item] - b[item]))
    f1 = 2 * n_common / (n_want + n_got) if n_want + n_got else 1.0
    return Agreement(f1, max_diff, n_want, n_got, n_common, len(want), differing)


def summary_table(rows: Sequence[Tuple[str, str, Agreement]]) -> str:
    """A plain-text table: one row per (file, run) with its agreement."""
    header = ("file", "run", "F1 vs torch", "max score diff", "items torch/onnx", "texts differing")
    body = [
        (
            file, run, f"{a.f1:.4f}", f"{a.max_score_diff:.2e}", f"{a.want}/{a.got}",
            f"{a.texts_differing}/{a.texts}",
        )
        for file, run, a in rows
    ]
    widths = [max(len(r[c]) for r in (header, *body)) for c in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in (header, *body)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
