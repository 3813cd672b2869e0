"""What every component shares (base.py): saving and loading with the
pipeline, checked files, clear errors for broken ones, `exclude` honoured."""
import json
import shutil

import pytest
import spacy
import srsly


@pytest.fixture(scope="module")
def saved(bert_ner, tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "pipe"
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(bert_ner), "device": "cpu"})
    nlp.initialize()
    nlp.to_disk(path)
    return path


def broken(saved, tmp_path, name="pipe"):
    target = tmp_path / name
    shutil.copytree(saved, target)
    return target, target / "hf_ner" / "model"


def test_cfg_lists_a_checksum_of_every_model_file(saved):
    cfg = srsly.read_json(saved / "hf_ner" / "cfg")
    model_dir = saved / "hf_ner" / "model"
    assert set(cfg["files"]) == {str(p.relative_to(model_dir)) for p in model_dir.rglob("*") if p.is_file()}
    assert {"model.safetensors", "tokenizer.json", "config.json"} <= set(cfg["files"])


def test_corrupted_tensor_bytes_are_caught_by_the_checksum(saved, tmp_path):
    """A flipped byte inside the weights keeps the safetensors header intact:
    the model would load and predict garbage; the checksum refuses it."""
    pipe, model_dir = broken(saved, tmp_path)
    weights = model_dir / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"\[E026\] hf_ner: '.*model\.safetensors' does not match the checksum.*re-save"):
        spacy.load(pipe)


@pytest.mark.parametrize(
    "damage,what",
    [
        (lambda d: (d / "model.safetensors").unlink(), "missing"),
        (lambda d: (d / "model.safetensors").write_bytes(b"\x00" * 64), "model weights"),
        (lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:5000]), "model weights"),
        (lambda d: (d / "tokenizer.json").write_text("{not json"), "tokenizer"),
        (lambda d: (d / "config.json").write_text("[]"), "config.json"),
    ],
)
def test_broken_files_name_the_component_the_file_and_the_fix(saved, tmp_path, damage, what):
    """Without checksums (a pipeline saved by an older version: no `cfg`
    file list), a broken file still gives the project's error."""
    pipe, model_dir = broken(saved, tmp_path)
    damage(model_dir)
    cfg = pipe / "hf_ner" / "cfg"
    srsly.write_json(cfg, {k: v for k, v in srsly.read_json(cfg).items() if k != "files"})
    with pytest.raises(ValueError, match=rf"\[E025\] hf_ner: .*{what}.*(re-save the pipeline|missing)"):
        spacy.load(pipe)


def test_a_missing_file_listed_in_cfg_is_named(saved, tmp_path):
    pipe, model_dir = broken(saved, tmp_path)
    (model_dir / "tokenizer.json").unlink()
    with pytest.raises(ValueError, match=r"\[E025\] hf_ner: the saved pipeline's model file '.*tokenizer\.json'.*missing"):
        spacy.load(pipe)


def test_exclude_is_honoured(saved, tmp_path):
    pipe, model_dir = broken(saved, tmp_path)
    data = bytearray((model_dir / "model.safetensors").read_bytes())
    data[-100] ^= 0xFF
    (model_dir / "model.safetensors").write_bytes(bytes(data))
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("hf_ner", config={"model": str(model_dir), "device": "cpu"})
    ner.from_disk(pipe / "hf_ner", exclude=["cfg"])  # no checksums to check
    assert ner.runtime.is_loaded
    out = tmp_path / "only_cfg"
    ner.to_disk(out, exclude=["model"])
    assert sorted(p.name for p in out.iterdir()) == ["cfg"]
    assert json.loads((out / "cfg").read_text())["files"] == {}


def test_imports_point_down():
    """The components and the layers under them import no command-line module,
    server or bulk runtime, and nothing lazily inside a function (`import`
    statements in function bodies are allowed only for optional heavy
    libraries: torch, transformers, onnxruntime, huggingface_hub, safetensors)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "spacy_hf_ner"
    core = ["base.py", "runtime.py", "ner.py", "tagger.py", "textcat.py", "training.py", "settings.py", "sources.py",
            "errors.py", "warning_codes.py", "exceptions.py", "ty.py", *(f"backends/{n}" for n in ("__init__.py", "registry.py", "legacy.py", "torch.py", "onnx.py"))]
    upper = {"init_config", "__main__", "displacy", "serve", "bulk", "package"}
    heavy = {"torch", "transformers", "onnxruntime", "huggingface_hub", "safetensors", "copy", "thinc", "spacy"}
    for name in core:
        tree = ast.parse((root / name).read_text(encoding="utf8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                parts = (node.module or "").split(".")
                assert not upper & set(parts), (name, node.module)
                imported = {a.name for a in node.names}
                assert not upper & imported, (name, imported)
        for func in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
            for node in ast.walk(func):
                if isinstance(node, ast.Import):
                    assert {a.name.split(".")[0] for a in node.names} <= heavy, (name, func.name)
                if isinstance(node, ast.ImportFrom):
                    assert node.level == 0 and (node.module or "").split(".")[0] in heavy, (name, func.name, node.module)
