"""spaCy's own heads listening to an hf_* component, as config text for
`spacy-hf-ner init-config --with tagger,parser,textcat`.

Each head is spaCy's component with the model of spaCy's transformer
quickstart, its `tok2vec` a spacy-curated-transformers listener whose
`upstream` is the hf_* component (see `listeners.py`). Two ways to train:

* "frozen": the hf_* component is in `frozen_components` and
  `annotating_components`: the heads learn from its hidden states, its own
  predictions stay exactly what they were;
* "joint": the hf_* component trains with them, its encoder getting both its
  own token-classification gradient and the heads' (times `grad_factor`).

No spaCy import: plain text.
"""
from typing import Any, Dict, List, Optional, Sequence

from .errors import Errors

LISTENER = "spacy-curated-transformers.LastTransformerLayerListener.v1"
WEIGHTED_LISTENER = "spacy-curated-transformers.ScalarWeightingListener.v1"
# `--layers`: the last layer, or a learned mix of the embeddings and every layer
# (the last layer of a fine-tuned token classifier is specialized to its labels)
LAYER_MODES = ("last", "weighted")
# the model block of each head (spaCy's transformer quickstart), without tok2vec
MODELS: Dict[str, str] = {
    "tagger": '@architectures = "spacy.Tagger.v2"\nnO = null\nnormalize = false',
    "morphologizer": '@architectures = "spacy.Tagger.v2"\nnO = null\nnormalize = false',
    "parser": (
        '@architectures = "spacy.TransitionBasedParser.v2"\nstate_type = "parser"\n'
        "extra_state_tokens = false\nhidden_width = 128\nmaxout_pieces = 3\nuse_upper = false\nnO = null"
    ),
    "textcat": '@architectures = "spacy.TextCatCNN.v2"\nexclusive_classes = true\nnO = null',
}
# what each head adds to [training.score_weights]
SCORE_WEIGHTS: Dict[str, Dict[str, Optional[float]]] = {
    "tagger": {"tag_acc": 1.0},
    "morphologizer": {"pos_acc": 0.5, "morph_acc": 0.5, "morph_per_feat": None},
    "parser": {"dep_uas": 0.5, "dep_las": 0.5, "dep_las_per_type": None, "sents_p": None, "sents_r": None, "sents_f": 0.0},
    "textcat": {"cats_score": 1.0},
}
ENCODER_MODES = ("frozen", "joint")
# the width of the listeners when the base model's config cannot be read
DEFAULT_WIDTH = 768


def parse_heads(value: Optional[str], component: str) -> List[str]:
    """The heads of `--with` ("tagger,parser"), checked (E144)."""
    if not value:
        return []
    heads = [h.strip() for h in value.split(",") if h.strip()]
    unknown = [h for h in heads if h not in MODELS]
    if unknown or len(set(heads)) != len(heads) or component == "hf_textcat":
        raise ValueError(
            Errors.E144.format(value=value, component=component, known=", ".join(MODELS))
        )
    return heads


def head_sections(heads: Sequence[str], upstream: str, width: int, layers: str = "last", n_layers: int = 12) -> str:
    """The config sections of the heads, each listening to `upstream`: to its
    last layer, or (`layers` = "weighted") to a learned weighting of its
    embeddings and `n_layers` layers."""
    out = []
    for head in heads:
        section = f"components.{head}.model.tok2vec"
        if layers == "weighted":
            what = "a learned weighting of the embeddings and every layer"
            listener = f"@architectures = \"{WEIGHTED_LISTENER}\"\n"
            extra = (
                f"\n[{section}.weighting]\n@architectures = \"spacy-curated-transformers.ScalarWeight.v1\"\n"
                f"num_layers = {n_layers}\ndropout_prob = 0.1\n"
            )
        else:
            what, listener, extra = "the last layer", f"@architectures = \"{LISTENER}\"\n", ""
        out.append(
            f"[components.{head}]\nfactory = \"{head}\"\n\n"
            f"[components.{head}.model]\n{MODELS[head]}\n\n"
            f"# the hidden states of `{upstream}`'s own forward pass ({what}), averaged over each token's pieces\n"
            f"[{section}]\n{listener}"
            f"width = {width}\nupstream = \"{upstream}\"\ngrad_factor = 1.0\n\n"
            f"[{section}.pooling]\n@layers = \"reduce_mean.v1\"\n{extra}"
        )
    return "\n".join(out).rstrip("\n")


def score_weights(
    own: Dict[str, Optional[float]], heads: Sequence[str], mode: str
) -> Dict[str, Optional[float]]:
    """The component's weights (0 when frozen: its scores cannot change) and
    the heads'."""
    weights: Dict[str, Optional[float]] = {
        k: (0.0 if mode == "frozen" and v else v) for k, v in own.items()
    }
    for head in heads:
        weights.update(SCORE_WEIGHTS[head])
    return weights


def base_config(model: Optional[str]) -> Optional[Any]:
    """The base model's transformers config, for the listeners' `width`
    (`hidden_size`) and layer count (None when it cannot be read)."""
    if not model:
        return None
    try:
        from transformers import AutoConfig

        from .sources import resolve_model

        return AutoConfig.from_pretrained(resolve_model(model, "init-config"))
    except Exception:  # offline, unknown id: the config says to set it
        return None
