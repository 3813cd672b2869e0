"""The server in a browser's threat model: a model's labels cannot inject
markup into the page, every answer carries the security headers, the Host
header is checked (DNS rebinding), and /health does not disclose paths."""
import base64
import hashlib
import re
import warnings

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install -e '.[serve]'")
import spacy  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from spacy.tokens import Doc  # noqa: E402

from spacy_hf_ner.__main__ import main  # noqa: E402
from spacy_hf_ner.errors import HFNerWarning  # noqa: E402
from spacy_hf_ner.serve import ServeConfig, create_app  # noqa: E402
from spacy_hf_ner.serve.config import LOOPBACK_HOSTS, allowed_hosts_for, host_allowed  # noqa: E402
from spacy_hf_ner.serve.formats import render_dependencies  # noqa: E402

from models import build_token_classifier  # noqa: E402

EVIL = "<img src=x onerror=alert(1)>"
LOCAL = "http://localhost"
TEXT = "My name is Sarah Jessica Parker and I work at Google in New York."


@pytest.fixture(scope="module")
def evil_model(tmp_path_factory):
    """A tiny token classifier whose entity label is an HTML payload."""
    labels = ["O", f"B-{EVIL}", f"I-{EVIL}"]
    return build_token_classifier(tmp_path_factory.mktemp("evil_ner"), labels, seed=5)


@pytest.fixture(scope="module")
def evil_app(evil_model):
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_ner", config={"model": str(evil_model)})
    return create_app(nlp, ServeConfig())


@pytest.fixture(scope="module")
def client(evil_app):
    with TestClient(evil_app, base_url=LOCAL) as client:
        yield client


def test_labels_are_escaped_in_the_entity_view(client):
    response = client.post("/render", json={"text": TEXT})
    assert response.status_code == 200
    data = response.json()
    assert data["entities"] and all(e["label"] == EVIL for e in data["entities"])
    assert "<img" not in data["ents_html"]
    assert "&lt;img src=x onerror=alert(1)&gt;" in data["ents_html"]


def test_dependency_labels_and_tags_are_escaped():
    nlp = spacy.blank("en")
    doc = Doc(
        nlp.vocab,
        words=["Angela", "visited", "Paris"],
        heads=[1, 1, 1],
        deps=["<b>nsubj</b>", "ROOT", "dobj"],
        pos=["PROPN", "VERB", "PROPN"],
        sent_starts=[True, False, False],
    )
    svg = render_dependencies(doc)
    assert "<b>" not in svg and "&lt;b&gt;nsubj&lt;/b&gt;" in svg


def test_security_headers(client):
    page = client.get("/")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    scripts = re.findall(r"<script>(.*?)</script>", page.text, flags=re.S)
    assert scripts
    for script in scripts:  # exactly the page's own scripts may run
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp and "connect-src 'self'" in csp
    for response in (page, client.get("/health"), client.post("/", json={"inputs": ""}), client.get("/nowhere")):
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" in response.headers
    assert client.get("/health").headers["content-security-policy"].startswith("default-src 'none'")


@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST"])
def test_loopback_hosts_are_accepted(client, host):
    assert client.get("/health", headers={"host": host}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "localhost.evil.example", "", "127.0.0.2"])
def test_other_hosts_are_refused(client, host):
    """DNS rebinding: a page at evil.example whose name now resolves to
    127.0.0.1 sends `Host: evil.example`."""
    response = client.get("/health", headers={"host": host})
    assert response.status_code == 400
    assert "--allowed-hosts" in response.json()["error"]
    assert response.headers["x-frame-options"] == "DENY"
    assert client.post("/", json={"inputs": TEXT}, headers={"host": host}).status_code == 400


def test_allowed_hosts_setting(evil_app):
    nlp = evil_app.state.batcher.run.nlp
    app = create_app(nlp, ServeConfig(allowed_hosts=("api.example.com", "*.internal")))
    with TestClient(app, base_url="http://api.example.com") as client:
        assert client.get("/health").status_code == 200
        assert client.get("/health", headers={"host": "a.b.internal:80"}).status_code == 200
        assert client.get("/health", headers={"host": "localhost"}).status_code == 400
        assert client.get("/health", headers={"host": "internal"}).status_code == 400


def test_allowed_hosts_defaults_follow_the_bind_address():
    assert allowed_hosts_for("127.0.0.1", None) == LOOPBACK_HOSTS
    assert allowed_hosts_for("localhost", None) == LOOPBACK_HOSTS
    assert allowed_hosts_for("::1", None) == LOOPBACK_HOSTS
    assert allowed_hosts_for("10.1.2.3", None) == ("10.1.2.3",)
    assert allowed_hosts_for("fe80::1", None) == ("[fe80::1]",)
    assert allowed_hosts_for("0.0.0.0", "a.example, 10.0.0.5") == ("a.example", "10.0.0.5")
    for bind in ("0.0.0.0", "::"):
        with pytest.warns(HFNerWarning, match=r"W120.*--allowed-hosts"):
            assert allowed_hosts_for(bind, None) == ("*",)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert allowed_hosts_for("0.0.0.0", "*") == ("*",)  # given on purpose: no warning
    assert host_allowed("[fe80::1]:80", ("[fe80::1]",))
    assert not host_allowed("fe80::1", ("localhost",))
    with pytest.raises(ValueError, match=r"E120.*--allowed-hosts"):
        ServeConfig(allowed_hosts=(" ", ""))


def test_health_shows_model_names_not_paths(client, evil_model):
    models = client.get("/health").json()["models"]
    assert models == {"hf_ner": evil_model.name}
    assert str(evil_model.parent) not in client.get("/health").text
    assert str(evil_model.parent) not in client.get("/").text
    assert str(evil_model.parent) not in client.get("/openapi.json").text


def test_command_line_refuses_empty_allowed_hosts(capsys):
    assert main(["serve", "model", "--allowed-hosts", ","]) == 1
    assert "E120" in capsys.readouterr().err


def test_page_shows_a_malicious_label_as_text(evil_app):
    """In a real browser: the label is text, no element is injected."""
    import uvicorn
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from serve_helpers import chromium_driver, free_port, running

    port = free_port()
    with running(uvicorn.Config(evil_app, host="127.0.0.1", port=port, log_level="warning")):
        driver = chromium_driver()
        try:
            driver.get(f"http://localhost:{port}/")
            WebDriverWait(driver, 60).until(lambda d: d.find_element(By.ID, "status").text.endswith("entities"))
            labels = driver.find_elements(By.CSS_SELECTOR, "#ents mark.entity .label")
            assert labels and all(label.text == EVIL for label in labels)
            assert not driver.find_elements(By.CSS_SELECTOR, "#ents img")
            assert driver.execute_script("return document.querySelectorAll('img').length") == 0
        finally:
            driver.quit()
