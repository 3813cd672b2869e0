"""Benchmarks, run from the repository root with `python -m bench.NAME` (e.g.
`python -m bench.speed --out bench/results/speed_cpu.json`); they score with
the evaluation module `scripts.evaluate_raw` and load CoNLL-2003 through
`scripts.conll`. Not part of the installed spacy_hf_ner package."""
