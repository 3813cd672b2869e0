"""The Ray engine gives the local engine's rows; crashes, a poisoned doc and a
lost node still end with every document exactly once; a pool that cannot fit
is refused.

Ray listens on all interfaces and advertises the host's address, so each
scenario runs in `tests/annotate_ray_scenarios.py` inside new network and pid
namespaces with only loopback (`unshare`, as root): nothing reaches the
network, and every Ray process dies with the scenario. Skipped, with the
reason, where Ray or unshare is not available.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("ray.data", reason="the Ray engine needs the ray extra: pip install '.[ray]'")

HERE = Path(__file__).parent
NAMESPACE = ["unshare", "--net", "--pid", "--fork", "--mount-proc"]


def _namespace_problem():
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs unshare and ip (util-linux, iproute2)"
    try:
        done = subprocess.run([*NAMESPACE, "sh", "-c", "ip link set lo up"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "unshare timed out"
    if done.returncode != 0:
        return f"cannot make a loopback-only network namespace (needs root): {done.stderr.strip()[:200]}"
    return None


PROBLEM = _namespace_problem()
pytestmark = pytest.mark.skipif(PROBLEM is not None, reason=f"Ray runs only in a loopback-only namespace: {PROBLEM}")


def run_scenario(scenario, model, faulty, texts, out, timeout):
    """Run one scenario in the namespace, with a hard timeout; its summary."""
    (out / "texts.txt").parent.mkdir(parents=True, exist_ok=True)
    (out / "texts.txt").write_text("\n".join(texts) + "\n", encoding="utf8")
    script = (
        f"ip link set lo up && exec {sys.executable} {HERE / 'annotate_ray_scenarios.py'} {scenario} "
        f"--model '{model}' --faulty '{faulty}' --texts '{out / 'texts.txt'}' --out '{out}'"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        done = subprocess.run([*NAMESPACE, "sh", "-c", script], capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:  # the pid namespace takes every Ray process with it
        pytest.fail(f"scenario {scenario} ran over {timeout} s:\n{(e.stderr or b'')[-3000:]}")
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((out / "result.json").read_text())


def rows_by_id(path):
    return {r["id"]: r for r in pq.read_table(path).to_pylist()}


def assert_same_entities(got, want):
    assert set(got) == set(want)
    for key, row in want.items():
        a, b = got[key]["entities"], row["entities"]
        assert [(e["text"], e["label"], e["start"], e["end"]) for e in a] == [
            (e["text"], e["label"], e["start"], e["end"]) for e in b
        ], key
        assert all(abs(x["score"] - y["score"]) < 1e-4 for x, y in zip(a, b)), key


@pytest.fixture(scope="module")
def engines(bert_ner, tmp_path_factory):
    from annotate_faults import faulty_pipeline
    from test_annotate import corpus_texts

    out = tmp_path_factory.mktemp("ray_engines")
    faulty = faulty_pipeline(bert_ner, out / "faulty_pipe")
    result = run_scenario("engines", bert_ner, faulty, corpus_texts(2000), out / "run", timeout=420)
    return out / "run", result


def test_ray_with_two_actors_gives_the_local_rows_and_both_actors_work(engines):
    out, result = engines
    local, ray = rows_by_id(out / "local.parquet"), rows_by_id(out / "ray.parquet")
    assert len(local) == len(ray) == 2000
    assert pq.read_table(out / "ray.parquet").num_rows == 2000  # each doc exactly once
    assert_same_entities(ray, local)
    assert result["ray"]["entities"] == result["local"]["entities"] > 0
    assert len(result["ray"]["workers"]) == 2 and min(result["ray"]["workers"].values()) > 0


def test_a_job_that_starts_ray_ends_with_its_output_and_leaves_no_process(engines):
    """Issue 28: Ray started by the engine in a thread that ends was killed
    with it (exit 1, no output); and no Ray process outlives the job."""
    out, result = engines
    owned = result["owned"]
    assert "error" not in owned, owned
    assert owned["documents"] == 300 and pq.read_table(out / "owned.parquet").num_rows == 300
    assert owned["ray_alive_at_close"] is True
    assert owned["left_running"] == []


def test_ray_workers_read_a_parquet_folder_and_resume_by_part(engines):
    """Driverless: the units of a folder of Parquet files without ids (record
    numbers); a run stopped before publishing, 3 parts removed: --resume
    annotates exactly their documents, and every record is in the output once
    with the local engine's entities."""
    out, result = engines
    resumed = result["resume"]
    assert "error" not in resumed, resumed
    assert resumed["parts"] >= 8  # 300 records, 40 per unit at most, both files cut
    assert resumed["annotated"] == resumed["removed"] > 0
    assert resumed["resumed"] == 300 - resumed["removed"] and resumed["documents"] == 300
    got = rows_by_id(out / "resumed.parquet")
    local = rows_by_id(out / "local.parquet")
    assert_same_entities(got, {str(i): local[f"d{i}"] for i in range(300)})


def test_ray_survives_an_actor_crash_and_keeps_a_poisoned_doc_with_its_error(engines):
    out, result = engines
    faults = result["faults"]
    assert "error" not in faults, faults
    assert faults["crashed"]  # an actor really died mid-batch
    rows = pq.read_table(out / "faulty.parquet").to_pylist()
    assert sorted(r["id"] for r in rows) == sorted(f"d{i}" for i in range(120))
    assert [r["id"] for r in rows if r["error"]] == ["d7"]
    assert rows_by_id(out / "faulty.parquet")["d70"]["error"] is None
    local = rows_by_id(out / "local.parquet")
    clean = {k: v for k, v in rows_by_id(out / "faulty.parquet").items() if k not in ("d7", "d70")}
    assert_same_entities(clean, {k: local[k] for k in clean})


def test_ray_refuses_a_pool_that_would_hang(engines):
    _, result = engines
    refused = result["refused"]
    assert refused["error"].startswith("[E107]") and "Fix: --workers 1" in refused["error"]
    assert not refused["written"] and refused["seconds"] < 10


@pytest.mark.slow
def test_a_lost_node_still_delivers_every_doc_exactly_once(bert_ner, tmp_path):
    """A simulated cluster (head + 3 one-CPU worker nodes, 2 actors) loses a
    node whose actor is annotating, mid-run."""
    from annotate_faults import faulty_pipeline
    from test_annotate import corpus_texts

    faulty = faulty_pipeline(bert_ner, tmp_path / "faulty_pipe")
    texts = corpus_texts(600)
    result = run_scenario("node-loss", bert_ner, faulty, texts, tmp_path / "run", timeout=420)
    assert "error" not in result, result
    assert result["node_removed"] and result["removed_mid_run"]
    assert result["doomed_node_docs"] > 0, result  # the lost node had done work: its actor was in the pool
    rows = pq.read_table(tmp_path / "run" / "lost.parquet").to_pylist()
    assert sorted(r["id"] for r in rows) == sorted(f"d{i}" for i in range(len(texts)))
    assert all(r["error"] is None for r in rows)
    # the report counts the units the lost node wrote whose summaries it took along
    assert result["annotated"] == result["documents"] == len(texts), result
    assert result["entities"] == sum(len(r["entities"]) for r in rows)


def write_issue_28_corpus(path, docs, words_per_doc):
    import random

    words = "paris berlin angela merkel met in on the a said minister talks london".split()
    rng = random.Random(1)
    with open(path, "w") as f:
        for i in range(docs):
            f.write(json.dumps({"id": f"d{i}", "text": " ".join(rng.choice(words) for _ in range(words_per_doc))}) + "\n")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("docs,words", [(500, 330), (300, 3000)], ids=["issue-28-recipe", "long-docs"])
def test_the_command_on_ray_ends_with_its_report_and_output_and_leaves_no_process(docs, words, tmp_path):
    """Issue 28's recipe (the bundled model, 2 actors of 0.5 CPU, several
    minutes, the pool scaling down at the end) and a run with ~20 KB docs: exit
    0, the report, the published output; no Ray process left afterwards."""
    corpus = write_issue_28_corpus(tmp_path / "corpus.jsonl", docs, words)
    out = tmp_path / "out.parquet"
    left = "import psutil, os; print('LEFT', [' '.join(p.cmdline())[:80] for p in psutil.process_iter() if p.pid > 1 and p.pid != os.getpid()])"
    script = (
        f"ip link set lo up; {sys.executable} -m spacy_hf_ner annotate '{corpus}' '{out}' --engine ray --workers 2 "
        f"--cpus-per-worker 0.5 --no-progress; echo rc=$?; {sys.executable} -c \"{left}\""
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    done = subprocess.run([*NAMESPACE, "sh", "-c", script], capture_output=True, text=True, timeout=1500, env=env)
    assert "rc=0" in done.stdout, done.stdout[-2000:] + done.stderr[-4000:]
    assert "documents" in done.stdout and pq.read_table(out).num_rows == docs
    assert "LEFT []" in done.stdout, done.stdout[-2000:]


def test_parts_whose_summaries_were_lost_are_counted_from_the_parts(tmp_path):
    """A unit's part written by a worker whose node went before its summary
    reached the driver: read again, it counts its rows, failures, entities and
    examples as the worker's own summary would have (no worker named)."""
    from spacy_hf_ner.bulk.job import Tally
    from spacy_hf_ner.bulk.ray import SUMMARY, _part_summaries, _summary, _tally

    entity = {"start": 0, "end": 6, "label": "PER", "text": "Angela", "score": 0.9}
    table = pa.table({
        "id": ["a", "b", "c"],
        "error": [None, "ValueError: poisoned document", None],
        "entities": [[entity, entity], None, [entity]],
    })
    pq.write_table(table, tmp_path / "part-7.parquet")
    read = _part_summaries(pa.table({"unit": [7], "path": [str(tmp_path / "part-7.parquet")]}))
    assert read.schema == SUMMARY
    assert read.to_pylist() == [_summary(7, table, "")]
    tally = Tally()
    assert _tally(tally, read) == {7}
    assert (tally.annotated, tally.failed, tally.entities) == (3, 1, 3)
    assert tally.failed_examples == ["'b': ValueError: poisoned document"] and not tally.workers
