"""The cost of one request is bounded and no request can hold the server:
caps on model windows and stride (4xx naming the flag), work dropped at the
deadline or when the client leaves, and connections whose request arrives too
slowly are closed. (The batcher's fair interleaving on its own: test_batcher.py.)"""
import socket
import time

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install -e '.[serve]'")
import httpx  # noqa: E402
import spacy  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import (  # noqa: E402
    given,
    settings,
    strategies as st,  # noqa: E402
)

from spacy_hf_ner.serve import ServeConfig, create_app  # noqa: E402
from spacy_hf_ner.serve.connection import uvicorn_config  # noqa: E402
from spacy_hf_ner.serve.schemas import TokenClassificationParameters  # noqa: E402
from spacy_hf_ner.serve.worker import PipelineWorker, freeze  # noqa: E402

from models import WORDS  # noqa: E402
from serve_helpers import free_port, running  # noqa: E402

LOCAL = "http://localhost"


@pytest.fixture(scope="module")
def short_nlp(bert_ner_short):
    """hf_ner with a 32-token window (30 text tokens): windows are cheap to count."""
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(bert_ner_short)})
    list(nlp.pipe(["warm up"]))
    return nlp


def words(n):
    """n words of the tiny models' vocabulary (one model token each)."""
    vocab = [w for w in WORDS if w.isalpha()]
    return " ".join(vocab[i % len(vocab)] for i in range(n))


# -- the cost of a request ------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    texts=st.lists(st.text(alphabet=st.sampled_from(list("abcé東 .,XY-")), min_size=1, max_size=200), min_size=1, max_size=4),
    stride=st.integers(0, 15),
)
def test_counted_windows_are_the_windows_the_model_reads(short_nlp, texts, stride):
    worker = PipelineWorker(short_nlp)
    runtime = short_nlp.get_pipe("hf_ner").runtime
    key = ("token", "hf_ner", freeze(TokenClassificationParameters(stride=stride)))
    costs = worker.cost(key, texts)
    for text, cost in zip(texts, costs):
        windows = runtime.encode([text], stride)
        assert cost.windows == len(windows)
        assert cost.tokens == sum(len(w.ids) for w in windows)


@pytest.fixture(scope="module")
def capped(short_nlp):
    app = create_app(short_nlp, ServeConfig(max_windows_per_request=4, max_inputs=8))
    with TestClient(app, base_url=LOCAL) as client:
        yield client


def test_stride_is_capped_at_half_the_window(capped):
    assert capped.post("/", json={"inputs": words(40), "parameters": {"stride": 15}}).status_code == 200
    response = capped.post("/", json={"inputs": words(40), "parameters": {"stride": 16}})
    assert response.status_code == 422
    error = response.json()["error"]
    assert "E121" in error and "parameters.stride" in error and "--max-stride" in error and "15" in error


def test_stride_cap_flag(short_nlp):
    with TestClient(create_app(short_nlp, ServeConfig(max_stride=4)), base_url=LOCAL) as client:
        assert client.post("/", json={"inputs": words(40), "parameters": {"stride": 4}}).status_code == 200
        response = client.post("/", json={"inputs": words(40), "parameters": {"stride": 5}})
        assert response.status_code == 422 and "--max-stride" in response.json()["error"]


def test_windows_per_request_are_capped(capped):
    """30 text tokens a window: 120 tokens are 4 windows at stride 0; one
    more token, or a stride, or a second input, needs a fifth."""
    ok = capped.post("/", json={"inputs": words(120), "parameters": {"stride": 0}})
    assert ok.status_code == 200
    for body in (
        {"inputs": words(121), "parameters": {"stride": 0}},
        {"inputs": words(120), "parameters": {"stride": 10}},
        {"inputs": [words(60), words(60), words(10)], "parameters": {"stride": 0}},
    ):
        response = capped.post("/", json=body)
        assert response.status_code == 413, body
        error = response.json()["error"]
        assert "E122" in error and "--max-windows-per-request" in error and "limit of 4" in error
    for path in ("/doc", "/render"):
        body = {"inputs": words(200)} if path == "/doc" else {"text": words(200)}
        assert capped.post(path, json=body).status_code == 413


def test_windows_per_input_are_capped(short_nlp):
    """One input is one model call: its windows are capped on their own."""
    with TestClient(create_app(short_nlp, ServeConfig(max_windows_per_input=2)), base_url=LOCAL) as client:
        body = {"inputs": [words(60), words(60)], "parameters": {"stride": 0}}
        assert client.post("/", json=body).status_code == 200
        response = client.post("/", json={"inputs": [words(10), words(61)], "parameters": {"stride": 0}})
        assert response.status_code == 413
        error = response.json()["error"]
        assert "E125" in error and "input 1 " in error and "3 model windows" in error and "--max-windows-per-input" in error


def test_worker_never_sees_a_refused_request(short_nlp):
    app = create_app(short_nlp, ServeConfig(max_windows_per_request=2))
    with TestClient(app, base_url=LOCAL) as client:
        before = app.state.batcher.stats["requests"]
        assert client.post("/", json={"inputs": words(400)}).status_code == 413
        assert client.post("/", json={"inputs": "a", "parameters": {"stride": 29}}).status_code == 422
        assert app.state.batcher.stats["requests"] == before


def test_504_drops_the_requests_remaining_work(short_nlp):
    app = create_app(short_nlp, ServeConfig(timeout_s=0.3, max_batch=1))
    calls = []
    with TestClient(app, base_url=LOCAL) as client:
        batcher = app.state.batcher
        run = batcher.run
        batcher.run = lambda key, items: (calls.append(items), time.sleep(0.1), run(key, items))[2]
        response = client.post("/", json={"inputs": [f"text {i}" for i in range(40)]})
        assert response.status_code == 504
        time.sleep(0.3)
        assert len(calls) <= 6 and batcher.stats["dropped_inputs"] >= 34
        batcher.run = run


# -- a real uvicorn: disconnects and slow clients ---------------------------------------------------


@pytest.fixture()
def live(short_nlp):
    """The app on uvicorn with the server's connection settings, read timeout 1 s."""
    app = create_app(short_nlp, ServeConfig(max_batch=1, read_timeout_s=1.0, keep_alive_s=1.0))
    port = free_port()
    with running(uvicorn_config(app, host="127.0.0.1", port=port, config=app.state.config, log_level="warning")):
        yield port, app


def test_a_client_that_leaves_has_its_work_dropped(live):
    port, app = live
    batcher = app.state.batcher
    run = batcher.run
    calls = []
    batcher.run = lambda key, items: (calls.append(items), time.sleep(0.05), run(key, items))[2]
    try:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"http://127.0.0.1:{port}/", json={"inputs": [f"text {i}" for i in range(60)]}, timeout=0.3)
        time.sleep(0.5)
        ran = len(calls)
        time.sleep(0.3)
        assert len(calls) == ran < 30  # nothing more runs once the client is gone
        assert batcher.stats["abandoned"] == 1 and batcher.stats["dropped_inputs"] >= 30
    finally:
        batcher.run = run
    assert httpx.post(f"http://127.0.0.1:{port}/", json={"inputs": "Paris"}).status_code == 200


def closed_within(sock, seconds):
    """Whether the server closes the socket within `seconds`."""
    sock.settimeout(seconds)
    try:
        return sock.recv(1024) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def test_slow_headers_are_cut_off(live):
    """A slowloris client sending its headers a byte at a time (2 bytes/s here)
    is disconnected after the read timeout (1 s), though it never stops."""
    port, _ = live
    request = b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nX-Slow: " + b"a" * 100
    with socket.create_connection(("127.0.0.1", port)) as sock:
        started = time.time()
        closed = False
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if closed_within(sock, 0.5):
                closed = True
                break
        assert closed and time.time() - started < 3.0


def test_slow_body_is_cut_off(live):
    port, _ = live
    head = b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head + b'{"inputs": "')
        started = time.time()
        closed = False
        while time.time() - started < 4 and not closed:
            try:
                sock.sendall(b"a")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            closed = closed_within(sock, 0.3)
        assert closed and time.time() - started < 3.0


def test_half_open_connections_are_closed(live):
    """200 connections that send nothing are all closed after the read timeout,
    and the server still answers."""
    port, _ = live
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
    try:
        started = time.time()
        assert all(closed_within(s, max(0.1, 4.0 - (time.time() - started))) for s in socks)
        assert time.time() - started < 4.0
    finally:
        for s in socks:
            s.close()
    assert httpx.post(f"http://127.0.0.1:{port}/", json={"inputs": "Paris"}, headers={"host": "localhost"}).status_code == 200
