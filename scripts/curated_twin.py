#!/usr/bin/env python
"""The same heads on spacy-curated-transformers' own `transformer`: a twin of a
`spacy-hf-ner init-config --with ... --encoder frozen` config, for comparing
heads that listen to `hf_ner` with heads that listen to curated's transformer
loading the same encoder weights.

The twin keeps every setting of the source config (heads, seed, steps,
optimizer, batches, corpora) and changes only where the hidden states come
from: `hf_ner` gives way to curated's `curated_transformer` named `transformer`
(BertTransformer.v1 sized from the model's config.json, its HF loaders reading
`${paths.encoder}` at `initialize`, `frozen = true`: curated runs it without
gradients and never updates it), and the listeners' `upstream` becomes
`transformer`.

Windows: hf_ner reads a text in windows of the tokenizer's `model_max_length`
(en_conll03: 256 pieces, [CLS] and [SEP] included) overlapping by an eighth
(32 pieces), each piece taken from the window where it has the most context.
Curated's `WithStridedSpans.v1` is set to the same window (256) and a stride of
224 (the same 32-piece overlap), where curated averages the overlapping pieces'
outputs. Texts within one window (on UD English EWT test, 10-sentence docs,
all but a few) get the same hidden states from both.

    python -m scripts.curated_twin configs/heads_ewt.cfg configs/heads_ewt_curated.cfg
    python -m scripts.curated_twin configs/heads_ewt.cfg configs/heads_ewt_curated_raw.cfg --pieces raw-text
    python -m scripts.curated_twin --link assets/en_conll03   # the encoder for ${paths.encoder}
"""
import argparse
import json
from pathlib import Path
from typing import Any, Dict

MODEL = "spacy-hf-ner:en_conll03"
WINDOW = 256
STRIDE = 224
# `--pieces`: curated's own (each spaCy token tokenized on its own), or the
# pieces hf_ner reads (the whole text tokenized: scripts/twin_pieces.py)
PIECE_ENCODERS = {"curated": "spacy-curated-transformers.BertWordpieceEncoder.v1", "raw-text": "spacy-hf-ner-twin.RawTextPieces.v1"}
PIECE_LOADERS = {"curated": "spacy-curated-transformers.HFPieceEncoderLoader.v1", "raw-text": "spacy-hf-ner-twin.RawTextPiecesLoader.v1"}


def encoder_dir() -> Path:
    from spacy_hf_ner.sources import resolve_model

    return Path(resolve_model(MODEL, "curated_twin"))


def transformer_model(model_dir: Path, window: int = WINDOW, stride: int = STRIDE, pieces: str = "curated") -> Dict[str, Any]:
    """curated's BertTransformer.v1 block, sized from the model's config.json;
    `pieces` "raw-text": the piece encoder of `scripts/twin_pieces.py`."""
    hf = json.loads((model_dir / "config.json").read_text())
    return {
        "@architectures": "spacy-curated-transformers.BertTransformer.v1",
        "vocab_size": hf["vocab_size"], "hidden_width": hf["hidden_size"],
        "intermediate_width": hf["intermediate_size"], "num_attention_heads": hf["num_attention_heads"],
        "num_hidden_layers": hf["num_hidden_layers"], "max_position_embeddings": hf["max_position_embeddings"],
        "type_vocab_size": hf["type_vocab_size"], "layer_norm_eps": hf["layer_norm_eps"],
        "hidden_act": hf["hidden_act"],
        "attention_probs_dropout_prob": hf["attention_probs_dropout_prob"],
        "hidden_dropout_prob": hf["hidden_dropout_prob"],
        "piece_encoder": {"@architectures": PIECE_ENCODERS[pieces]},
        "with_spans": {"@architectures": "spacy-curated-transformers.WithStridedSpans.v1", "stride": stride, "window": window},
    }  # fmt: skip


def loaders(name: str, pieces: str = "curated") -> Dict[str, Any]:
    """The `[initialize.components.transformer]` loaders of the weights at `name`."""
    return {
        "encoder_loader": {"@model_loaders": "spacy-curated-transformers.HFTransformerEncoderLoader.v1", "name": name},
        "piecer_loader": {"@model_loaders": PIECE_LOADERS[pieces], "name": name},
    }


def twin(config, model_dir: Path, encoder: str = "assets/en_conll03", upstream: str = "hf_ner", pieces: str = "curated"):
    """The config with `upstream`'s place taken by a frozen curated transformer
    sized as the model in `model_dir`, whose weights it loads from `encoder`
    (`${paths.encoder}`)."""
    config = config.copy()
    config["paths"]["encoder"] = encoder
    config["paths"].pop("base_model", None)
    pipeline = config["nlp"]["pipeline"]
    config["nlp"]["pipeline"] = ["transformer" if name == upstream else name for name in pipeline]
    del config["components"][upstream]
    all_layers = False
    for name in (n for n in pipeline if n != upstream):
        tok2vec = config["components"][name].get("model", {}).get("tok2vec", {})
        if tok2vec.get("upstream") == upstream:
            tok2vec["upstream"] = "transformer"
            all_layers = all_layers or "weighting" in tok2vec  # ScalarWeightingListener: every layer
    config["components"]["transformer"] = {
        "factory": "curated_transformer", "all_layer_outputs": all_layers, "frozen": True,
        "model": transformer_model(model_dir, pieces=pieces),
    }  # fmt: skip
    training = config["training"]
    for key in ("frozen_components", "annotating_components"):
        training[key] = [name for name in training[key] if name != upstream]
    training["score_weights"] = {k: v for k, v in training["score_weights"].items() if not k.startswith("ents_")}
    config["initialize"]["components"]["transformer"] = loaders("${paths.encoder}", pieces)
    return config


def link(dest: Path) -> None:
    from scripts.base_model import link_dir

    link_dir(encoder_dir(), dest)


def main() -> None:
    from spacy.util import load_config

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", type=Path, nargs="?", help="a config whose heads listen to hf_ner")
    ap.add_argument("output", type=Path, nargs="?", help="the twin config to write")
    ap.add_argument("--link", type=Path, default=None, help="link the en_conll03 encoder here and stop")
    ap.add_argument("--pieces", choices=sorted(PIECE_ENCODERS), default="curated",
                    help="curated's own piece encoder (each spaCy token on its own), or hf_ner's pieces of the whole text")
    args = ap.parse_args()
    if args.link:
        link(args.link)
        return
    config = twin(load_config(args.source, interpolate=False), encoder_dir(), pieces=args.pieces)
    command = f"python -m scripts.curated_twin {args.source} {args.output}"
    if args.pieces != "curated":
        command += f" --pieces {args.pieces} (train and evaluate with --code scripts/twin_pieces.py)"
    text = f"# Written by: {command} (the heads of {args.source} on curated's transformer)\n{config.to_str()}"
    args.output.write_text(text + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
