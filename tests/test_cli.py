"""The `spacy-hf-ner` command line starts without the heavy libraries: `--help`
and `--version` import neither torch, transformers nor spaCy (the components'
modules load only when a command runs)."""
import subprocess
import sys

import pytest

import spacy_hf_ner

HEAVY = ("torch", "transformers", "spacy", "thinc")


def run_main(*argv):
    script = (
        "import sys\n"
        "from spacy_hf_ner.__main__ import main\n"
        "try:\n"
        f"    main({list(argv)!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120).stdout


def test_help_lists_the_commands_without_importing_torch_or_spacy():
    out = run_main("--help")
    for command in ("serve", "export-onnx", "init-config", "displacy"):
        assert command in out
    assert out.strip().splitlines()[-1] == "HEAVY []"


@pytest.mark.parametrize("command", ["serve", "export-onnx", "init-config", "displacy"])
def test_each_command_has_help(command):
    out = run_main(command, "--help")
    assert out.startswith(f"usage: spacy-hf-ner {command}")


def test_version():
    out = run_main("--version")
    assert out.splitlines()[0] == f"spacy-hf-ner {spacy_hf_ner.__version__}"
    assert out.strip().splitlines()[-1] == "HEAVY []"


def test_public_names_load_on_first_use():
    from spacy_hf_ner import HFNer, load_pipeline

    assert HFNer.factory == "hf_ner" and callable(load_pipeline)
    assert set(spacy_hf_ner.__all__) <= set(dir(spacy_hf_ner))
