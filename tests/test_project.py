"""The spaCy project (project.yml): valid, and every workflow step's inputs come from somewhere.

The full workflow takes hours (it trains on CoNLL-2003), so CI does not run it;
these checks catch the mistakes that would only show up hours into a run: a
workflow naming a command that does not exist, a script that is not there, a
step that reads what no earlier step writes.
"""
import re
import subprocess
from pathlib import Path

import pytest

weasel_util = pytest.importorskip("weasel.util")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def project():
    # validates the schema and that workflows only name defined commands
    return weasel_util.load_project_config(ROOT)


@pytest.fixture(scope="module")
def commands(project):
    return {c["name"]: c for c in project["commands"]}


def tracked_files():
    out = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    return set(out.stdout.split())


def test_project_scripts_exist(commands):
    """Every script runs as a module of the scripts package (`python -m
    scripts.NAME`, no `sys.path` edits), and the module is there."""
    for command in commands.values():
        for line in command.get("script", []):
            assert not re.search(r"\bpython \S+\.py\b", line), f"{command['name']}: run {line!r} with python -m"
            for module in re.findall(r"\bpython -m scripts\.(\w+)", line):
                assert (ROOT / "scripts" / f"{module}.py").is_file(), f"{command['name']}: scripts/{module}.py missing"


@pytest.mark.parametrize("workflow", ["all", "extras", "shared-encoder"])
def test_project_workflow_deps_are_produced_in_order(project, commands, workflow):
    """Each dep of a step is a tracked file or an output of an earlier step."""
    tracked = tracked_files()
    produced = set()

    def available(dep):
        return (
            dep in tracked
            or any(dep == out or dep.startswith(out.rstrip("/") + "/") for out in produced)
        )

    for name in project["workflows"][workflow]:
        command = commands[name]
        missing = [dep for dep in command.get("deps", []) if not available(dep)]
        assert not missing, f"{workflow}: step {name!r} needs {missing}, which no earlier step writes"
        produced.update(command.get("outputs", []))
        produced.update(command.get("outputs_no_cache", []))


def test_shipped_model_comes_from_the_workflow(project, commands):
    """assemble and export-default read a model that the `all` workflow trains."""
    trained = {
        out
        for name in project["workflows"]["all"]
        for out in commands[name].get("outputs", [])
        if out.startswith("training/")
    }
    for name in ("assemble", "export-default"):
        (model,) = [d for d in commands[name]["deps"] if d.startswith("training/")]
        assert model in trained, f"{name} reads {model}, not trained by `all` ({sorted(trained)})"


def load_script(name):
    import importlib

    return importlib.import_module(f"scripts.{name}")


def test_model_card_states_training_data_and_checkpoint(tmp_path):
    """export_default's card says what the model was trained on, from the config."""
    describe = load_script("export_default").describe_training
    combined = tmp_path / "train_dev"
    combined.mkdir()
    for name in ("dev", "train"):
        (combined / f"{name}.spacy").write_bytes(b"")
    splits, selection = describe({"paths": {"train": str(combined)}}, "model-last")
    assert splits == "train and dev splits"
    assert "last step" in selection and "dev is training data" in selection
    splits, selection = describe({"paths": {"train": str(combined / "train.spacy")}}, "model-best")
    assert splits == "train split"
    assert "best dev F1" in selection
    with pytest.raises(SystemExit, match="paths.train"):
        describe({"paths": {"train": str(tmp_path / "empty")}}, "model-last")
