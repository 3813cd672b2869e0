"""Component kinds (`spacy_hf_ner.kinds`): each kind described once and read by
init-config, export-onnx, the server and sources; a new kind is its own module
plus one registration line (the toy below); hf_tagger is served; a request for
a task the server lacks gets a coded 4xx (issue 29, item 8)."""
import argparse
from typing import Any, Dict, List, Sequence

import numpy as np
import pytest
import spacy
from spacy.tokens import Doc

from spacy_hf_ner.base import HFComponent, register_factory
from spacy_hf_ner.errors import SpacyHFNerError
from spacy_hf_ner.init_config import add_arguments, render
from spacy_hf_ner.kinds import ComponentKind, Recipe, Serving, all_kinds, bare_kind, kind_of, register_kind
from spacy_hf_ner.settings import ModelSettings
from spacy_hf_ner.tagger import UPOS_TAGS

fastapi = pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install -e '.[serve]'")
from fastapi.testclient import TestClient  # noqa: E402

from spacy_hf_ner.serve import ServeConfig, create_app  # noqa: E402

from models import build_token_classifier  # noqa: E402

LOCAL = "http://localhost"
TEXT = "Angela Merkel visited Paris ."


# -- the toy kind: a module of its own would hold exactly this ------------------------


def first_token_records(nlp: Any, name: str, texts: Sequence[str], **parameters: Any) -> List[List[Dict[str, Any]]]:
    """The toy's Inference API records: its label of each text's first token."""
    docs = list(nlp.get_pipe(name).pipe(nlp.make_doc(t) for t in texts))
    return [[{"entity_group": d._.toy_label, "score": 1.0, "word": d[0].text, "start": 0, "end": len(d[0])}] for d in docs]


TOY = ComponentKind(
    factory="toy_first_token",
    task="token",
    writes="the first token's label -> doc._.toy_label",
    assigns=(),
    score_weights={"toy_acc": 1.0},
    recipe=Recipe("a toy head over the data's labels", 100, 40),
    serving=Serving(route="token-classification", records=first_token_records),
)


class ToySettings(ModelSettings):
    """The toy has only the shared keys."""


class ToyFirstToken(HFComponent[ToySettings]):
    """Labels each doc with its first model token's label."""

    kind = TOY
    extension = (Doc, "toy_label")
    gold_name = "toy labels"

    def _gold_labels(self, examples):
        return None

    def _after_load(self) -> None:
        pass

    def predict(self, docs):
        self._ensure_loaded()
        found = self._token_probs([doc.text for doc in docs])
        return [self.runtime.id2label[int(np.argmax(probs[0]))] if len(probs) else None for _, _, probs in found]

    def set_annotations(self, docs, labels) -> None:
        for doc, label in zip(docs, labels):
            doc._.toy_label = label


make_toy = register_factory(ToyFirstToken, default_config={"model": "spacy-hf-ner:en_conll03", "scorer": None})


# -- the descriptors ------------------------------------------------------------------


def test_each_builtin_kind_is_read_from_its_module():
    from spacy.language import Language

    from spacy_hf_ner.ner import HFNer
    from spacy_hf_ner.tagger import HFTagger
    from spacy_hf_ner.textcat import HFTextcat

    for cls in (HFNer, HFTagger, HFTextcat):
        kind = kind_of(cls.factory)
        assert kind is cls.kind and cls.task == kind.task
        meta = Language.get_factory_meta(kind.factory)
        assert meta.default_score_weights == dict(kind.score_weights)  # one definition
        assert meta.assigns == list(kind.assigns)
    assert {"hf_ner", "hf_tagger", "hf_textcat"} <= set(all_kinds())
    assert bare_kind("token").factory == "hf_ner" and bare_kind("sequence").factory == "hf_textcat"
    assert kind_of("tok2vec") is None and kind_of(None) is None


def test_a_kind_is_registered_once():
    assert register_kind(TOY) is TOY  # the same description again: a no-op
    other = ComponentKind(
        factory=TOY.factory, task="sequence", writes="x", assigns=(), score_weights={}, recipe=TOY.recipe
    )
    with pytest.raises(SpacyHFNerError, match=r"E038.*toy_first_token") as info:
        register_kind(other)
    assert info.value.code == "E038"


def init_config(argv):
    ap = argparse.ArgumentParser()
    add_arguments(ap)
    return render(ap.parse_args(argv))


@pytest.mark.parametrize("factory", ["hf_ner", "hf_tagger", "hf_textcat"])
def test_init_config_writes_the_kinds_recipe_and_weights(factory):
    kind = kind_of(factory)
    text = init_config(["-", "-c", factory])
    assert f"({kind.writes})" in text.splitlines()[0]
    assert f"max_steps = {kind.recipe.max_steps}" in text
    weights = text.split("[training.score_weights]\n")[1].split("\n\n")[0].splitlines()
    want = [f"{k} = {'null' if v is None else v}" for k, v in kind.score_weights.items()]
    assert weights == want


def test_init_config_refuses_an_unknown_component():
    with pytest.raises(SpacyHFNerError, match=r"E145.*'hf_parser'.*hf_ner, hf_tagger, hf_textcat"):
        init_config(["-", "-c", "hf_parser"])


# -- a new kind: init-config, serve and sources handle it ------------------------------------


def test_toy_kind_gets_an_init_config():
    text = init_config(["-", "-c", "toy_first_token", "--model", "some/encoder"])
    assert "`toy_first_token` (the first token's label -> doc._.toy_label)" in text
    assert 'factory = "toy_first_token"' in text
    assert "max_steps = 40" in text and "toy_acc = 1.0" in text
    assert "a toy head" in text


def test_toy_kind_is_served_and_loaded(bert_ner, tmp_path):
    from spacy_hf_ner.backends.export_source import resolve_source
    from spacy_hf_ner.sources import load_pipeline

    nlp = spacy.blank("en")
    nlp.add_pipe("toy_first_token", config={"model": str(bert_ner)})
    nlp.to_disk(tmp_path / "pipe")
    loaded = load_pipeline(str(tmp_path / "pipe"))
    assert loaded.pipe_names == ["toy_first_token"]
    assert resolve_source(str(tmp_path / "pipe")).kind is TOY
    label = loaded(TEXT)._.toy_label
    assert label in loaded.get_pipe("toy_first_token").runtime.id2label
    with TestClient(create_app(loaded, ServeConfig()), base_url=LOCAL) as client:
        want = [{"entity_group": label, "score": 1.0, "word": "Angela", "start": 0, "end": 6}]
        for path in ("/", "/models/toy_first_token", "/pipeline/token-classification"):
            response = client.post(path, json={"inputs": TEXT})
            assert response.status_code == 200, response.text
            assert response.json() == want
        assert client.post("/doc", json={"inputs": TEXT}).json()["text"] == TEXT


# -- hf_tagger is served -------------------------------------------------------------------


@pytest.fixture(scope="module")
def upos(tmp_path_factory):
    return build_token_classifier(tmp_path_factory.mktemp("upos"), labels=list(UPOS_TAGS), seed=5)


def test_tagger_is_served(upos):
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_tagger", config={"model": str(upos)})
    want = nlp(TEXT)
    with TestClient(create_app(nlp, ServeConfig()), base_url=LOCAL) as client:
        doc = client.post("/doc", json={"inputs": TEXT}).json()
        assert [t["pos"] for t in doc["tokens"]] == [t.pos_ for t in want]
        tags = client.post("/models/hf_tagger", json={"inputs": [TEXT]}).json()[0]
        assert [(r["entity_group"], r["start"], r["end"], r["word"]) for r in tags] == [
            (t.pos_, t.idx, t.idx + len(t), t.text) for t in want
        ]
        assert [r["score"] for r in tags] == pytest.approx([t._.hf_tag_score for t in want], abs=1e-5)
        assert client.post("/pipeline/token-classification", json={"inputs": [TEXT]}).json() == [tags]
        dropped = client.post("/", json={"inputs": TEXT, "parameters": {"ignore_labels": [tags[0]["entity_group"]]}})
        assert tags[0]["entity_group"] not in {r["entity_group"] for r in dropped.json()}
        refused = client.post("/", json={"inputs": TEXT, "parameters": {"aggregation_strategy": "max"}})
        assert refused.status_code == 422 and "E127" in refused.json()["error"]


# -- a task the server lacks (issue 29, item 8) --------------------------------------------


@pytest.fixture(scope="module")
def ner_only(bert_ner):
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(bert_ner)})
    return nlp


def test_task_the_server_lacks_is_a_coded_4xx(ner_only):
    with TestClient(create_app(ner_only, ServeConfig()), base_url=LOCAL) as client:
        lacking = client.post("/pipeline/text-classification", json={"inputs": TEXT})
        assert lacking.status_code == 404
        assert "E126" in lacking.json()["error"] and "hf_ner (token-classification)" in lacking.json()["error"]
        with_params = client.post("/", json={"inputs": TEXT, "parameters": {"top_k": 1}})
        assert with_params.status_code == 422
        assert "E126" in with_params.json()["error"] and "text-classification" in with_params.json()["error"]
        served = client.post("/pipeline/token-classification", json={"inputs": TEXT})
        assert served.status_code == 200 and served.json() == client.post("/", json={"inputs": TEXT}).json()


def test_inference_client_text_classification_against_ner_server(ner_only):
    """huggingface_hub's client raises an HTTP error carrying the coded
    message, not an IndexError on an empty answer."""
    hub = pytest.importorskip("huggingface_hub")
    import uvicorn

    from serve_helpers import free_port, running

    port = free_port()
    app = create_app(ner_only, ServeConfig())
    with running(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")):
        base = f"http://127.0.0.1:{port}"
        for url, kwargs in ((f"{base}/pipeline/text-classification", {}), (base, {"top_k": 2})):
            client = hub.InferenceClient(model=url)
            with pytest.raises(hub.errors.HfHubHTTPError, match="E126") as info:
                client.text_classification(TEXT, **kwargs)
            assert info.value.response.status_code in (404, 422)
        entities = hub.InferenceClient(model=f"{base}/pipeline/token-classification").token_classification(TEXT)
        assert isinstance(entities, list)
