"""The Spark engine gives the local engine's rows; a Python worker killed
mid-task, a poisoned doc and a hanging doc still end with every document
exactly once (the hang as E108, then --resume); a cluster without executors
fails with E113 instead of hanging.

Spark runs in local mode inside new network and pid namespaces with only
loopback (`unshare`, as root, as the Ray tests): nothing reaches the network
and every Spark process (the JVM, Python workers) dies with the scenario
(`tests/annotate_spark_scenarios.py`). Skipped, with the reason, where
pyspark, Java or unshare is not available.
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
from hypothesis import given, strategies as st

pytest.importorskip("pyspark", reason="the Spark engine needs the spark extra: pip install '.[spark]'")

from test_annotate_ray import NAMESPACE, _namespace_problem, assert_same_entities

from spacy_hf_ner.bulk.spark import check_parts, rebatch, write_part
from spacy_hf_ner.bulk.spark_job import _id_column, next_prefix, part_files, plan_parts
from spacy_hf_ner.errors import SpacyHFNerError

HERE = Path(__file__).parent

PROBLEM = _namespace_problem() or (None if shutil.which("java") else "needs Java 17 or later (apt-get install openjdk-17-jre-headless)")
needs_spark = pytest.mark.skipif(PROBLEM is not None, reason=f"Spark runs only in a loopback-only namespace: {PROBLEM}")


def run_scenario(scenario, model, faulty, texts, out, timeout):
    """Run one scenario in the namespace, with a hard timeout; its summary."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "texts.txt").write_text("\n".join(texts) + "\n", encoding="utf8")
    script = (
        f"ip link set lo up && exec {sys.executable} {HERE / 'annotate_spark_scenarios.py'} {scenario} "
        f"--model '{model}' --faulty '{faulty}' --texts '{out / 'texts.txt'}' --out '{out}'"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent)}
    try:
        done = subprocess.run([*NAMESPACE, "sh", "-c", script], capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:  # the pid namespace takes every Spark process with it
        pytest.fail(f"scenario {scenario} ran over {timeout} s:\n{(e.stderr or b'')[-3000:]}")
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads((out / "result.json").read_text())
    assert "error" not in result or not isinstance(result["error"], str), result["error"]
    return result


def rows_by_id(path):
    return {r["id"]: r for r in pq.read_table(path).to_pylist()}


def ids_of(path):
    return [r["id"] for r in pq.read_table(path, columns=["id"]).to_pylist()]


@pytest.fixture(scope="module")
def engines(bert_ner, tmp_path_factory):
    if PROBLEM is not None:
        pytest.skip(f"Spark runs only in a loopback-only namespace: {PROBLEM}")
    from annotate_faults import faulty_pipeline
    from test_annotate import corpus_texts

    out = tmp_path_factory.mktemp("spark_engines")
    faulty = faulty_pipeline(bert_ner, out / "faulty_pipe")
    result = run_scenario("engines", bert_ner, faulty, corpus_texts(400), out / "run", timeout=900)
    return out / "run", result


def test_spark_gives_the_local_engines_rows_on_two_cores(engines):
    out, result = engines
    local = rows_by_id(out / "local.parquet")
    spark_ids = ids_of(out / "spark.parquet")  # a folder of parts
    assert len(spark_ids) == len(set(spark_ids)) == len(local) == 400
    assert_same_entities(rows_by_id(out / "spark.parquet"), local)
    assert result["spark"]["entities"] == result["local"]["entities"] > 0
    assert result["spark"]["documents"] == result["spark"]["annotated"] == 400
    assert len(result["spark"]["workers"]) == 2 and min(result["spark"]["workers"].values()) > 0
    assert result["reused_session"] == "local[2,4]"  # the library call ran in the caller's session
    meta = json.loads((out / "spark.parquet.meta.json").read_text())
    assert meta["config_hash"].startswith("sha256:") and meta["offsets"].startswith("python character offsets")


def test_spark_numbers_records_without_ids_as_the_local_engine_and_writes_jsonl(engines):
    out, _ = engines
    local = rows_by_id(out / "local_numbered.parquet")
    lines = [json.loads(line) for f in sorted((out / "spark_numbered.jsonl").glob("part-*")) for line in open(f) if line.strip()]
    assert sorted(r["id"] for r in lines) == sorted(local) == sorted(str(i) for i in range(100))
    assert all("error" in r and r["error"] is None for r in lines)
    assert_same_entities({r["id"]: r for r in lines}, local)


def test_annotate_dataframe_is_the_documented_library_call(engines):
    out, _ = engines
    assert_same_entities(rows_by_id(out / "dataframe.parquet"), rows_by_id(out / "local.parquet"))


def test_a_killed_python_worker_loses_nothing_and_repeats_nothing(engines):
    out, result = engines
    faults = result["faults"]
    assert faults["crashed"]  # a worker process really died mid-task (os._exit), and Spark retried its task
    ids = ids_of(out / "faulty.parquet")
    assert sorted(ids) == sorted(f"d{i}" for i in range(300))
    rows = rows_by_id(out / "faulty.parquet")
    assert [k for k, r in rows.items() if r["error"]] == ["d7"] and "poisoned" in rows["d7"]["error"]
    assert faults["failed"] == faults["failed_now"] == 1 and faults["documents"] == 300
    assert len(faults["failed_examples"]) == 1 and faults["failed_examples"][0].startswith("'d7': ")
    local = rows_by_id(out / "local.parquet")
    clean = {k: v for k, v in rows.items() if k not in ("d7", "d150")}
    assert_same_entities(clean, {k: local[k] for k in clean})


def test_a_resumed_run_reports_and_exits_on_the_published_output(engines):
    """Issue 29 item 6 on Spark: the first run's failed document is in the
    output, so a resumed run reports it (and this run's 0, no W100) and the
    command line exits 2, as the local and Ray engines do."""
    out, result = engines
    resumed = result["faults"]["resumed"]
    rows = rows_by_id(out / "faulty_resumed.parquet")
    assert sorted(rows) == sorted(f"d{i}" for i in range(320))
    assert [k for k, r in rows.items() if r["error"]] == ["d7"]
    report = resumed["report"]
    assert (report["documents"], report["annotated"], report["resumed"]) == (320, 20, 300)
    assert (report["failed"], report["failed_now"], report["failed_examples"]) == (1, 0, [])
    new = [f"d{i}" for i in range(300, 320)]
    assert report["entities"] == sum(len(r["entities"] or []) for r in rows.values())
    assert report["entities_now"] == sum(len(rows[k]["entities"] or []) for k in new) < report["entities"]
    assert resumed["w100"] == []  # nothing failed in this run
    assert resumed["exit_code"] == 2
    assert "1 (0 in this run)" in resumed["table"]


def test_a_hanging_task_stops_with_e108_and_resume_finishes_exactly_once(engines):
    out, result = engines
    stall = result["stall"]
    assert stall["stalled"]["error"].startswith("[E108]"), stall["stalled"]
    assert stall["stalled"]["seconds"] < 120
    assert stall["parts_kept"]  # the finished parts stay for --resume
    assert stall["without_resume"]["error"].startswith("[E105]")
    resumed = stall["resumed"]
    assert resumed["resumed"] > 0 and resumed["resumed"] + resumed["annotated"] == resumed["documents"] == 300
    ids = ids_of(out / "hang.parquet")
    assert sorted(ids) == sorted(f"d{i}" for i in range(300))
    assert not (out / "hang.parquet.parts").exists()


@pytest.mark.slow
@needs_spark
def test_a_cluster_without_executors_fails_with_e113_instead_of_hanging(bert_ner, tmp_path):
    from test_annotate import corpus_texts

    result = run_scenario("no-executor", bert_ner, "", corpus_texts(20), tmp_path / "run", timeout=300)
    refused = result["no_executor"]
    assert refused["error"] and refused["error"].startswith("[E113]"), refused
    assert "0 executor(s)" in refused["error"] and refused["seconds"] < 180  # session start + 15 s + cancel
    assert not (tmp_path / "run" / "none.parquet").exists()


# -- the pure parts, without Spark ------------------------------------------------------


@given(sizes=st.lists(st.integers(0, 40), max_size=12), size=st.integers(1, 17))
def test_rebatch_keeps_every_row_in_order_in_batches_of_size(sizes, size):
    start, batches = 0, []
    for n in sizes:
        batches.append(pa.record_batch({"id": pa.array([str(i) for i in range(start, start + n)])}))
        start += n
    out = list(rebatch(iter(batches), size))
    assert [i for b in out for i in b.column("id").to_pylist()] == [str(i) for i in range(start)]
    assert all(b.num_rows == size for b in out[:-1]) and all(0 < b.num_rows <= size for b in out)


def test_plan_parts_bounds_part_size_and_spreads_small_corpora():
    assert plan_parts(1_000_000, 10_000, 64, 2) == 100  # at most checkpoint_every docs a part
    assert plan_parts(600, 10_000, 16, 2) == 8  # 4 tasks per core
    assert plan_parts(10, 10_000, 64, 8) == 1  # never an empty part by design
    assert plan_parts(0, 10_000, 64, 8) == 1


def test_each_run_gets_new_part_names_after_the_runs_before():
    assert next_prefix([]) == "part-001"
    assert next_prefix(["/x/part-001000003.parquet", "/x/part-002000000.parquet"]) == "part-003"
    assert next_prefix(["/x/part-000041.parquet"]) == "part-001"  # the local engine's parts


def test_a_part_that_lost_rows_stops_publishing_with_e110(tmp_path):
    from spacy_hf_ner.bulk.core import schema

    write_part(pa.Table.from_pylist([{"id": "a", "entities": [], "error": None}], schema=schema()), str(tmp_path), "part-001000000.parquet")
    assert not list(tmp_path.glob(".*"))  # the temporary name is gone
    check_parts([{"part": "part-001000000.parquet", "rows": 1}], str(tmp_path))
    with pytest.raises(RuntimeError, match=r"\[E110\].*holds 1 rows, its task wrote 2"):
        check_parts([{"part": "part-001000000.parquet", "rows": 2}], str(tmp_path))


def test_a_missing_text_or_id_column_is_e102_with_the_flag():
    with pytest.raises(SpacyHFNerError, match=r"\[E102\].*`body`.*--text-key") as e:
        _id_column("in.jsonl", ["id", "text"], "body", None)
    assert e.value.code == "E102"
    with pytest.raises(SpacyHFNerError, match=r"--id-key"):
        _id_column("in.jsonl", ["id", "text"], "text", "doc")
    assert _id_column("in.jsonl", ["id", "text"], "text", None) == "id"
    assert _id_column("in.jsonl", ["text"], "text", None) is None
    assert _id_column("in.jsonl", ["id", "text"], "text", "") is None


def test_sparks_own_failures_become_e116_and_ours_keep_their_code():
    from spacy_hf_ner.bulk.spark import _coded

    class PythonException(Exception):
        pass

    PythonException.__module__ = "pyspark.errors.exceptions.captured"
    error = _coded(PythonException("\n  Job aborted due to stage failure: Task 3 failed 4 times\nJava stack"))
    assert isinstance(error, RuntimeError) and str(error).startswith("[E116]")
    assert "PythonException: Job aborted due to stage failure: Task 3 failed 4 times" in str(error)
    ours = SpacyHFNerError("[E113] annotate: ...")
    assert _coded(ours) is ours
    assert _coded(KeyError("x")).__class__ is KeyError


@pytest.mark.parametrize("scheme", ["memory", "file"])
def test_parts_on_a_uri_are_listed_with_their_scheme(scheme, tmp_path):
    """Spark reads the finished parts back (resume, verify) by the paths
    `part_files` gives: on s3://, gs://, dbfs:/ ... a path without its scheme
    is another place. A temporary (hidden) part is not listed."""
    folder = f"memory://parts-{tmp_path.name}" if scheme == "memory" else (tmp_path / "parts").as_uri()
    table = pa.table({"id": ["a"]})
    write_part(table, folder, "part-001000000.parquet")
    write_part(table, folder, "part-001000001.parquet")
    assert part_files(folder) == [f"{folder}/part-001000000.parquet", f"{folder}/part-001000001.parquet"]
    assert part_files(folder + "-none") == []
