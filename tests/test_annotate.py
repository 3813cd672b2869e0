"""Bulk annotation on the local engine: the batch function, readers and
writers, the job's guarantees (every document exactly once, resume after a
kill, fallback for a bad document, the watchdog) and the Ray resource check
(pure logic, no Ray needed)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import spacy
from hypothesis import given, settings, strategies as st

import spacy_hf_ner
from spacy_hf_ner.bulk.core import Spec, annotate_batch, describe, load_cached
from spacy_hf_ner.bulk.io import parts_dir, read_metadata, read_rows
from spacy_hf_ner.bulk.pool import check_resources, plan_workers, unit_rows

from texts import TEXTS

HERE = Path(__file__).parent
FAULTS = str(HERE / "annotate_faults.py")
LONG = ("Angela Merkel met John Smith in Paris . " * 2600)[:100_000]
WORDS = "Angela Merkel Paris Google John Smith said the bank in Berlin on Monday".split()


def corpus_texts(n):
    """Short varied texts, some without any letter (no entities)."""
    return [" ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(1 + i % 9)) if i % 13 else "..." for i in range(n)]


def write_jsonl(path, texts, ids=None):
    with open(path, "w", encoding="utf8") as f:
        for i, text in enumerate(texts):
            f.write(json.dumps({"id": ids[i] if ids else f"d{i}", "text": text}) + "\n")
    return path


def ents_of(doc):
    return [(e.text, e.label_, e.start_char, e.end_char, e._.hf_score) for e in doc.ents]


def ents_of_row(row):
    return [(e["text"], e["label"], e["start"], e["end"], e["score"]) for e in row["entities"]]


def assert_same(got, want):
    """Entities alike per doc, scores within 1e-4 (padding in another batch
    moves the last digits)."""
    assert set(got) == set(want)
    for key in want:
        assert [e[:4] for e in got[key]] == [e[:4] for e in want[key]], key
        assert all(abs(a[4] - b[4]) < 1e-4 for a, b in zip(got[key], want[key])), key


@pytest.fixture(scope="module")
def faulty(bert_ner, tmp_path_factory):
    """hf_ner on the tiny model, then a component that raises on "POISON",
    one that kills its process once on "CRASH", and one that sleeps."""
    from annotate_faults import faulty_pipeline

    return str(faulty_pipeline(bert_ner, tmp_path_factory.mktemp("faulty") / "pipe"))


def run(input, output, pipeline, **kwargs):
    kwargs.setdefault("progress", False)
    kwargs.setdefault("batch_size", 8)
    return spacy_hf_ner.annotate(input, output, pipeline, **kwargs)


# -- the batch function ---------------------------------------------------------------


def test_batch_function_equals_nlp_pipe_including_empty_and_100k_char_docs(bert_ner):
    texts = [*TEXTS, "", LONG]
    spec = Spec(pipeline=str(bert_ner))
    nlp = load_cached(spec)
    assert load_cached(spec) is nlp  # loaded once per worker
    table = annotate_batch(nlp, [f"t{i}" for i in range(len(texts))], texts)
    rows = table.to_pylist()
    assert [r["id"] for r in rows] == [f"t{i}" for i in range(len(texts))]
    assert all(r["error"] is None for r in rows)
    expected = [ents_of(doc) for doc in nlp.pipe(texts)]
    assert_same(dict(enumerate(ents_of_row(r) for r in rows)), dict(enumerate(expected)))
    assert len(expected[-1]) > 1000  # the long doc is annotated all through
    assert rows[-2]["entities"] == [] and rows[-1]["entities"][-1]["end"] > 99_000
    for row, text in zip(rows, texts):
        assert all(text[e["start"] : e["end"]] == e["text"] for e in row["entities"])


def test_a_bad_document_fails_alone_and_is_kept_with_its_error(faulty, bert_ner):
    nlp = load_cached(Spec(pipeline=faulty, code=FAULTS))
    clean = load_cached(Spec(pipeline=str(bert_ner)))
    texts = ["Angela Merkel in Paris", "POISON John Smith", None, "Google in Berlin"]
    rows = annotate_batch(nlp, ["a", "b", "c", "d"], texts).to_pylist()
    assert [r["id"] for r in rows] == ["a", "b", "c", "d"]
    assert rows[1]["error"] == "ValueError: poisoned document" and rows[1]["entities"] == []
    assert rows[2]["error"].startswith("no text") and rows[2]["entities"] == []
    for i in (0, 3):
        assert rows[i]["error"] is None
        assert_same({i: ents_of_row(rows[i])}, {i: ents_of(clean(texts[i]))})


def test_describe_reads_fields_and_config_hash_without_weights(bert_ner, bert_textcat, tmp_path):
    assert describe(str(bert_ner))["fields"] == []
    assert describe(str(bert_textcat))["fields"] == ["cats"]
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_tagger", config={"model": str(bert_ner), "device": "cpu"})
    nlp.add_pipe("hf_textcat", config={"model": str(bert_textcat), "device": "cpu"})
    nlp.initialize()
    nlp.to_disk(tmp_path / "pipe")
    info = describe(str(tmp_path / "pipe"))
    assert info["fields"] == ["cats", "tags"]
    assert info["config_hash"] != describe(str(bert_ner))["config_hash"]


# -- jobs -------------------------------------------------------------------------------


def test_job_writes_every_doc_once_with_metadata_and_flat_view(bert_ner, tmp_path):
    texts = [*corpus_texts(50), "", LONG[:3000]]
    src = write_jsonl(tmp_path / "corpus.jsonl", texts)
    report = run(src, tmp_path / "out.parquet", str(bert_ner), flat=tmp_path / "ents.parquet")
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column("id").to_pylist() == [f"d{i}" for i in range(len(texts))]
    assert table.column_names == ["id", "entities", "error"]
    nlp = load_cached(Spec(pipeline=str(bert_ner)))
    assert_same(dict(enumerate(ents_of_row(r) for r in table.to_pylist())), dict(enumerate(map(ents_of, nlp.pipe(texts)))))
    assert (report.documents, report.annotated, report.resumed, report.failed) == (len(texts), len(texts), 0, 0)
    n_ents = sum(len(r["entities"]) for r in table.to_pylist())
    assert report.entities == n_ents > 0
    meta = read_metadata(tmp_path / "out.parquet")
    assert meta["model"] == str(bert_ner) and meta["config_hash"].startswith("sha256:")
    assert meta["spacy_hf_ner_version"] == spacy_hf_ner.__version__ and "python character offsets" in meta["offsets"]
    flat = pq.read_table(tmp_path / "ents.parquet")
    assert flat.num_rows == n_ents and flat.column_names == ["id", "text", "label", "start", "end", "score"]
    assert flat.to_pylist() == [{"id": r["id"], **e} for r in table.to_pylist() for e in r["entities"]]
    assert not parts_dir(tmp_path / "out.parquet").exists()
    assert "docs/s" in report.table() and "failed documents" in report.table()


def test_inputs_and_outputs_of_every_format_give_the_same_rows(bert_ner, tmp_path):
    texts = corpus_texts(30)
    ids = [f"doc {i}" for i in range(len(texts))]
    write_jsonl(tmp_path / "c.jsonl", texts, ids)
    pq.write_table(pa.table({"body": texts, "key": ids}), tmp_path / "c.parquet")
    with open(tmp_path / "c.csv", "w", newline="", encoding="utf8") as f:
        import csv

        w = csv.writer(f)
        w.writerow(["key", "body"])
        w.writerows(zip(ids, texts))
    (tmp_path / "txt").mkdir()
    for doc_id, text in zip(ids, texts):
        (tmp_path / "txt" / f"{doc_id}.txt").write_text(text, encoding="utf8")
    want = run(tmp_path / "c.jsonl", tmp_path / "a.jsonl", str(bert_ner))
    rows = read_rows(tmp_path / "a.jsonl").to_pylist()
    assert [r["id"] for r in rows] == ids and want.documents == len(ids)
    for name, kwargs in [("c.parquet", {"text_key": "body", "id_key": "key"}), ("c.csv", {"text_key": "body", "id_key": "key"})]:
        run(tmp_path / name, tmp_path / f"{name}.parquet", str(bert_ner), **kwargs)
        assert read_rows(tmp_path / f"{name}.parquet").to_pylist() == rows, name
    run(tmp_path / "txt", tmp_path / "txt.parquet", str(bert_ner))
    by_file = {r["id"]: r for r in read_rows(tmp_path / "txt.parquet").to_pylist()}
    assert {k[: -len(".txt")]: v["entities"] for k, v in by_file.items()} == {r["id"]: r["entities"] for r in rows}
    json.loads((tmp_path / "a.jsonl.meta.json").read_text())["config_hash"].startswith("sha256:")


def test_cats_and_tags_are_written_when_the_pipeline_assigns_them(bert_ner, bert_textcat, tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("hf_tagger", config={"model": str(bert_ner), "device": "cpu"})
    nlp.add_pipe("hf_textcat", config={"model": str(bert_textcat), "device": "cpu"})
    nlp.initialize()
    nlp.to_disk(tmp_path / "pipe")
    texts = ["Angela Merkel in Paris", "", "Google said on Monday"]
    src = write_jsonl(tmp_path / "c.jsonl", texts)
    for name in ("o.jsonl", "o.parquet"):
        run(src, tmp_path / name, str(tmp_path / "pipe"))
    line = json.loads((tmp_path / "o.jsonl").read_text().splitlines()[0])
    assert set(line) == {"id", "entities", "cats", "tags", "error"} and isinstance(line["cats"], dict)
    rows = read_rows(tmp_path / "o.parquet").to_pylist()
    assert read_rows(tmp_path / "o.jsonl").to_pylist() == rows
    for row, doc in zip(rows, nlp.pipe(texts)):
        assert dict(row["cats"]) == pytest.approx(doc.cats, abs=1e-4)
        assert [(t["text"], t["start"], t["tag"]) for t in row["tags"]] == [(t.text, t.idx, t.tag_ or t.pos_) for t in doc]


def test_job_refuses_bad_input_and_an_existing_output(bert_ner, tmp_path):
    src = write_jsonl(tmp_path / "c.jsonl", ["a", "b"], ids=["x", "x"])
    with pytest.raises(ValueError, match=r"\[E103\].*'x' twice.*--id-key ''"):
        run(src, tmp_path / "o.parquet", str(bert_ner))
    # numbering the records instead works
    assert run(src, tmp_path / "o.parquet", str(bert_ner), id_key="").documents == 2
    with pytest.raises(FileExistsError, match=r"\[E105\].*--resume"):
        run(src, tmp_path / "o.parquet", str(bert_ner), id_key="")
    with pytest.raises(ValueError, match=r"\[E102\].*--text-key"):
        run(src, tmp_path / "p.parquet", str(bert_ner), text_key="body")
    with pytest.raises(ValueError, match=r"\[E101\]"):
        run(src, tmp_path / "p.txt", str(bert_ner))
    with pytest.raises(ValueError, match=r"\[E111\].*--batch-size"):
        run(src, tmp_path / "p.parquet", str(bert_ner), batch_size=0)


def test_poisoned_and_null_docs_are_written_once_with_an_error(faulty, tmp_path):
    texts = corpus_texts(20)
    texts[5] = "POISON " + texts[5]
    with open(tmp_path / "c.jsonl", "w") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"id": i, "text": t if i != 9 else None}) + "\n")
    with pytest.warns(spacy_hf_ner.HFNerWarning, match=r"\[W100\] annotate: 2 of 20"):
        report = run(tmp_path / "c.jsonl", tmp_path / "o.parquet", faulty, code=FAULTS)
    rows = read_rows(tmp_path / "o.parquet").to_pylist()
    assert [r["id"] for r in rows] == [str(i) for i in range(20)]
    assert [r["id"] for r in rows if r["error"]] == ["5", "9"] and report.failed == 2
    assert sum(bool(r["entities"]) for r in rows) > 10


def test_watchdog_stops_a_stalled_job(faulty, tmp_path):
    src = write_jsonl(tmp_path / "c.jsonl", ["Paris", "HANG here", "Berlin"])
    start = time.perf_counter()
    with pytest.raises(TimeoutError, match=r"\[E108\].*--stall-timeout"):
        run(src, tmp_path / "o.parquet", faulty, code=FAULTS, batch_size=1, stall_timeout=3)
    assert time.perf_counter() - start < 30
    # the finished batch was kept for --resume
    assert len(pq.read_table(next(parts_dir(tmp_path / "o.parquet").glob("part-*.parquet")))) == 1


@pytest.mark.slow
def test_watchdog_ends_the_command_without_waiting_for_a_stuck_worker(faulty, tmp_path):
    """With spawned workers, a worker stuck for 60 s is terminated: the command
    exits with E108 long before."""
    src = write_jsonl(tmp_path / "c.jsonl", ["Paris", "HANG here", "Berlin", "London"])
    cmd = [
        sys.executable, "-m", "spacy_hf_ner", "annotate", str(src), str(tmp_path / "o.parquet"), "--pipeline", faulty,
        "--code", FAULTS, "--batch-size", "1", "--workers", "2", "--stall-timeout", "20", "--no-progress",
    ]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 1 and "[E108]" in done.stderr, done.stderr[-2000:]
    assert time.perf_counter() - start < 55


def test_killed_run_resumes_with_every_doc_exactly_once(faulty, bert_ner, tmp_path):
    texts = corpus_texts(60)
    src = write_jsonl(tmp_path / "c.jsonl", texts)
    out = tmp_path / "o.jsonl"
    cmd = [
        sys.executable, "-m", "spacy_hf_ner", "annotate", str(src), str(out), "--pipeline", faulty,
        "--code", FAULTS, "--batch-size", "4", "--checkpoint-every", "4", "--no-progress",
    ]
    env = {**os.environ, "ANNOTATE_SLEEP": "0.05", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    parts = parts_dir(out)
    deadline = time.time() + 120
    while len(list(parts.glob("part-*.parquet"))) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    assert not out.exists()
    done = sum(len(pq.read_table(p)) for p in parts.glob("part-*.parquet"))
    assert 0 < done < len(texts)
    with pytest.raises(FileExistsError, match=r"\[E105\].*unfinished run"):
        run(src, out, faulty, code=FAULTS)
    report = run(src, out, faulty, code=FAULTS, resume=True)
    assert report.resumed == done and report.annotated == len(texts) - done and report.documents == len(texts)
    rows = read_rows(out).to_pylist()
    assert sorted(r["id"] for r in rows) == sorted(f"d{i}" for i in range(len(texts)))
    nlp = load_cached(Spec(pipeline=str(bert_ner)))
    want = {f"d{i}": ents_of(doc) for i, doc in enumerate(nlp.pipe(texts))}
    assert_same({r["id"]: ents_of_row(r) for r in rows}, want)
    # resuming a finished job adds nothing and keeps every row
    again = run(src, out, faulty, code=FAULTS, resume=True)
    assert (again.annotated, again.documents) == (0, len(texts))


def test_resume_refuses_another_pipeline_and_never_writes_a_doc_twice(bert_ner, bert_ner_sparse, tmp_path):
    src = write_jsonl(tmp_path / "c.jsonl", corpus_texts(12))
    out = tmp_path / "o.parquet"
    run(src, out, str(bert_ner))
    with pytest.raises(ValueError, match=r"\[E112\].*resume with --pipeline"):
        run(src, out, str(bert_ner_sparse), resume=True)
    # killed after OUTPUT was published but before its parts were removed:
    # the rows are in both, and the output still has each doc once
    from spacy_hf_ner.bulk.core import schema
    from spacy_hf_ner.bulk.io import Parts

    table = pq.read_table(out)
    Parts(parts_dir(out), schema(), read_metadata(out)).write(table.slice(0, 5))
    report = run(src, out, str(bert_ner), resume=True)
    assert report.documents == 12 and report.annotated == 0
    assert pq.read_table(out).column("id").to_pylist() == table.column("id").to_pylist()


def test_local_workers_are_spawned_and_survive_a_crash(faulty, bert_ner, tmp_path, monkeypatch):
    """Two spawned worker processes; one dies mid-batch (os._exit) once: the
    pool restarts, and the rows equal one process's."""
    texts = corpus_texts(80)
    texts[37] = "CRASH " + texts[37]
    src = write_jsonl(tmp_path / "c.jsonl", texts)
    flag = tmp_path / "crashed"
    monkeypatch.setenv("ANNOTATE_CRASH_FLAG", str(flag))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    report = run(src, tmp_path / "two.parquet", faulty, code=FAULTS, workers=2, batch_size=5)
    assert flag.exists()
    assert len(report.workers) >= 2 and report.documents == len(texts) and report.failed == 0
    rows = read_rows(tmp_path / "two.parquet").to_pylist()
    assert sorted(r["id"] for r in rows) == sorted(f"d{i}" for i in range(len(texts)))
    nlp = load_cached(Spec(pipeline=str(bert_ner)))
    want = {f"d{i}": ents_of(doc) for i, doc in enumerate(nlp.pipe(texts))}
    assert_same({r["id"]: ents_of_row(r) for r in rows}, want)


# -- the Ray resource check (pure) ---------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    cpus=st.integers(1, 64),
    gpus=st.integers(0, 8),
    workers=st.integers(1, 40),
    cpus_per_worker=st.sampled_from([0.25, 0.5, 1.0, 2.0, 4.0]),
    gpus_per_worker=st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0]),
)
def test_resource_check_refuses_exactly_what_cannot_run_and_its_fix_runs(cpus, gpus, workers, cpus_per_worker, gpus_per_worker):
    fits = workers * cpus_per_worker + 1 <= cpus and (gpus_per_worker == 0 or workers * gpus_per_worker <= gpus)
    try:
        check_resources(cpus, gpus, workers, cpus_per_worker, gpus_per_worker)
        assert fits
    except ValueError as e:
        assert not fits
        message = str(e)
        assert message.startswith("[E107]") and "Fix:" in message
        import re

        fix = re.search(r"--workers (\d+)", message)
        if fix:
            check_resources(cpus, gpus, int(fix.group(1)), cpus_per_worker, gpus_per_worker)


def test_default_pool_is_one_actor_per_gpu_else_what_the_cpus_hold():
    assert plan_workers(16, 4, None, 1.0, None) == (4, 1.0)
    assert plan_workers(16, 1, None, 1.0, 0.25) == (4, 0.25)
    assert plan_workers(8, 0, None, 1.0, None) == (7, 0.0)
    assert plan_workers(2, 0, None, 0.5, None) == (2, 0.0)


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 100_000), workers=st.integers(1, 64), batch_size=st.integers(1, 512))
def test_every_actor_gets_a_unit_and_no_unit_exceeds_a_checkpoint(n, workers, batch_size):
    rows = unit_rows(n, workers, batch_size)
    assert 1 <= rows <= batch_size
    assert -(-n // rows) >= min(n, workers)


def test_units_give_every_actor_work():
    assert unit_rows(20, 2, 64) == 3  # 20 short docs: 7 blocks, not one
    assert unit_rows(2000, 2, 64) == 64
    assert unit_rows(1, 4, 64) == 1


def test_ray_is_imported_only_by_the_ray_engine(monkeypatch, bert_ner, tmp_path, capsys):
    code = "import sys, spacy_hf_ner, spacy_hf_ner.__main__; print('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == ["False"]
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    monkeypatch.setitem(sys.modules, "ray.data", None)
    monkeypatch.setenv("SPACY_HF_NER_ANNOTATE_STATUS", str(tmp_path / "status"))  # the job in this process
    src = write_jsonl(tmp_path / "c.jsonl", ["Paris"])
    from spacy_hf_ner.__main__ import main

    assert main(["annotate", str(src), str(tmp_path / "o.parquet"), "--pipeline", str(bert_ner), "--engine", "ray"]) == 1
    err = capsys.readouterr().err
    assert "[E106]" in err and "pip install '.[ray]'" in err
    # the local engine needs no ray
    assert main(["annotate", str(src), str(tmp_path / "o.parquet"), "--pipeline", str(bert_ner), "--no-progress"]) == 0



def test_a_resumed_run_reports_and_exits_on_the_published_output(bert_ner, tmp_path, capfd):
    """Issue 29 item 6: the failed document of the first run is in the output,
    so the resumed run reports it (and this run's 0) and exits 2."""
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(["Paris", None, "Berlin"])))
    out = tmp_path / "o.parquet"
    with pytest.warns(spacy_hf_ner.HFNerWarning):
        first = run(src, out, str(bert_ner))
    assert (first.failed, first.failed_now) == (1, 1)
    again = run(src, out, str(bert_ner), resume=True)
    assert (again.documents, again.annotated, again.failed, again.failed_now) == (3, 0, 1, 0)
    assert again.entities == first.entities and again.entities_now == 0
    table = again.table()
    assert "1 (0 in this run)" in table
    from spacy_hf_ner.__main__ import main

    argv = ["annotate", str(src), str(out), "--pipeline", str(bert_ner), "--resume", "--no-progress"]
    assert main(argv) == 2
    assert "1 (0 in this run)" in capfd.readouterr().out


def test_the_command_prints_a_warning_as_the_docs_show_it(bert_ner, tmp_path):
    """`spacy-hf-ner annotate` prints W100 as `HFNerWarning: [W100] ...`
    (docs/guides/bulk.md), not with the file, line and source line of the
    `warnings.warn` call that Python's default format adds."""
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(["Paris", None])))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    argv = ["annotate", str(src), str(tmp_path / "o.parquet"), "--pipeline", str(bert_ner), "--no-progress"]
    done = subprocess.run([sys.executable, "-m", "spacy_hf_ner", *argv], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.splitlines()
    assert any(line.startswith("HFNerWarning: [W100] annotate: 1 of 2 document(s) failed") for line in lines), done.stderr
    assert "warnings.warn(" not in done.stderr and "job.py" not in done.stderr


@pytest.mark.parametrize(
    "options,flag",
    [({"batch_size": 0}, "--batch-size"), ({"workers": 0}, "--workers"), ({"stall_timeout": 0}, "--stall-timeout"),
     ({"cpus_per_worker": -1}, "--cpus-per-worker"), ({"gpus_per_worker": -0.5}, "--gpus-per-worker"),
     ({"max_retries": -1}, "--max-retries"), ({"engine": "spork"}, "--engine"), ({"batchsize": 8}, "batch_size")],
)
def test_options_are_checked_once_with_a_coded_error_naming_the_flag(options, flag, tmp_path):
    from spacy_hf_ner.errors import SpacyHFNerError

    with pytest.raises(SpacyHFNerError, match=r"\[E111\]") as e:
        spacy_hf_ner.annotate(tmp_path / "c.jsonl", tmp_path / "o.parquet", **options)
    assert flag in str(e.value) and e.value.code == "E111"
    assert not (tmp_path / "o.parquet").exists()


def test_every_option_is_a_flag_with_the_models_default():
    import argparse

    from spacy_hf_ner.bulk.options import NOT_FLAGS, AnnotateOptions, add_arguments, from_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    flags = {a.dest for a in parser._actions}
    assert set(AnnotateOptions.model_fields) - flags <= {"ray_init", "spark_conf"}  # Python only
    options = from_arguments(parser.parse_args(["in.jsonl", "out.parquet"]))
    assert options == AnnotateOptions(input="in.jsonl", output="out.parquet")
    options = from_arguments(parser.parse_args(["in.jsonl", "o.jsonl", "--workers", "3", "--no-progress", "--resume", "--id-key", ""]))
    assert (options.workers, options.progress, options.resume, options.id_key) == (3, False, True, "")
    assert "resume" in NOT_FLAGS


@pytest.mark.parametrize("death,said", [("os._exit(1)", "status 1"), ("os.kill(os.getpid(), 9)", "signal SIGKILL")])
def test_a_job_that_dies_without_a_word_still_says_why(death, said, bert_ner, tmp_path):
    """The guard: native code (Ray's `_Exit(1)`, issue 28) or the OOM killer
    ends the job's process silently; the command says so, coded."""
    code = tmp_path / "die.py"
    code.write_text(f"import os\n{death}\n")
    src = write_jsonl(tmp_path / "c.jsonl", ["Paris"])
    cmd = [sys.executable, "-m", "spacy_hf_ner", "annotate", str(src), str(tmp_path / "o.parquet"), "--code", str(code),
           "--pipeline", str(bert_ner)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "[E117]" in done.stderr and said in done.stderr and "--resume" in done.stderr, done.stderr[-2000:]
