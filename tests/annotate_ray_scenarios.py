"""Ray scenarios for tests/test_annotate_ray.py and bench/annotate_speed.py.

Run it inside a network namespace with only loopback (Ray listens on all
interfaces and advertises the host's address):

    unshare -n sh -c 'ip link set lo up && exec python tests/annotate_ray_scenarios.py SCENARIO ...'

Scenarios (each writes its outputs and a JSON summary into --out):

* `engines`: the same corpus through the local engine and through Ray with 2
  actors; then a corpus with a poisoned doc and a doc that crashes its actor
  once; then a pool that cannot fit (refused).
* `node-loss`: a simulated cluster (`ray.cluster_utils.Cluster`: a head for
  the driver, 3 one-CPU worker nodes, 2 actors); a node whose actor is
  annotating is removed mid-run.

The assertions are in the tests; this script only runs the jobs.
"""
import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Ray nices its workers to 15: on a busy CI machine they would starve
os.environ.setdefault("RAY_worker_niceness", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).parent
FAULTS = str(HERE / "annotate_faults.py")
STORE = 80 * 1024 * 1024


def write_jsonl(path, texts):
    with open(path, "w", encoding="utf8") as f:
        for i, text in enumerate(texts):
            f.write(json.dumps({"id": f"d{i}", "text": text}) + "\n")
    return path


def quiet_ray_data():
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False if hasattr(ctx, "print_on_execution_start") else None


def summary(report):
    return {
        "documents": report.documents,
        "annotated": report.annotated,
        "failed": report.failed,
        "entities": report.entities,
        "seconds": report.seconds,
        "workers": report.workers,
    }


def left_running():
    """Every other process of this pid namespace: none may outlive a job."""
    import psutil

    return [" ".join(p.cmdline())[:120] for p in psutil.process_iter() if p.pid != os.getpid() and p.pid > 1]


def owned(corpus, out, model):
    """The engine starts Ray itself (no `ray.init` before): the job ends with
    its output (issue 28: Ray started in the engine's thread died with it) and
    leaves no Ray process behind."""
    import ray

    import spacy_hf_ner
    from spacy_hf_ner.bulk.ray import RayEngine

    close, alive = RayEngine.close, {}

    def watched_close(self):  # were Ray's own processes still there when the job ended?
        node = ray._private.worker._global_node
        alive["ray"] = bool(node and node.remaining_processes_alive())
        close(self)

    RayEngine.close = watched_close
    try:
        report = spacy_hf_ner.annotate(
            corpus, out / "owned.parquet", model, engine="ray", workers=2, cpus_per_worker=0.5, batch_size=32,
            stall_timeout=240, ray_init={"num_cpus": 2, "object_store_memory": STORE},
        )
        result = summary(report)
    except Exception as e:  # reported to the test
        result = {"error": f"{type(e).__name__}: {e}"}
    RayEngine.close = close
    result["left_running"] = left_running()
    result["ray_alive_at_close"] = alive.get("ray")
    return result


def resume(texts, out, model):
    """A folder of two Parquet files without ids (record numbers) is cut into
    units; a run stopped before publishing leaves its parts; with 3 of them
    removed, --resume annotates exactly those units again."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import spacy_hf_ner
    from spacy_hf_ner.bulk.io import parts_dir
    from spacy_hf_ner.bulk.ray import RayEngine

    folder = out / "folder"
    folder.mkdir()
    half = len(texts) // 2
    pq.write_table(pa.table({"text": texts[:half]}), folder / "a.parquet")
    pq.write_table(pa.table({"text": texts[half:]}), folder / "b.parquet")
    target = out / "resumed.parquet"
    options = dict(engine="ray", workers=2, cpus_per_worker=0.5, batch_size=16, checkpoint_every=40, stall_timeout=240)
    prove = RayEngine._prove

    def stopped(*args):
        raise KeyboardInterrupt("stopped before publishing")

    RayEngine._prove = stopped
    try:
        spacy_hf_ner.annotate(folder, target, model, **options)
    except KeyboardInterrupt:
        pass
    finally:
        RayEngine._prove = prove
    parts = sorted(parts_dir(target).glob("part-*.parquet"))
    removed = sum(pq.read_metadata(p).num_rows for p in parts[1:4])
    for p in parts[1:4]:
        p.unlink()
    report = spacy_hf_ner.annotate(folder, target, model, resume=True, **options)
    return {**summary(report), "parts": len(parts), "removed": removed, "resumed": report.resumed}


def engines(args, out):
    import ray

    import spacy_hf_ner

    texts = [line.rstrip("\n") for line in open(args.texts, encoding="utf8")]
    corpus = write_jsonl(out / "corpus.jsonl", texts)
    flag = out / "crashed"
    # read by the faulty pipeline's actors, which inherit the environment Ray starts with
    os.environ["ANNOTATE_CRASH_FLAG"] = str(flag)
    result = {}
    result["local"] = summary(
        spacy_hf_ner.annotate(corpus, out / "local.parquet", args.model, progress=False, batch_size=32)
    )
    result["owned"] = owned(write_jsonl(out / "owned.jsonl", texts[:300]), out, args.model)
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=STORE, log_to_driver=True)
    quiet_ray_data()
    # Ray Data starts actors asynchronously: on a loaded machine the first one up
    # could annotate every unit before the second has loaded its model; the
    # scenario checks that the work spreads over the pool once both are up
    ray.data.DataContext.get_current().wait_for_min_actors_s = 240
    t = time.perf_counter()
    result["ray"] = summary(
        spacy_hf_ner.annotate(
            corpus, out / "ray.parquet", args.model, engine="ray", workers=2, cpus_per_worker=0.5, batch_size=32,
            stall_timeout=240,
        )
    )
    result["ray"]["wall"] = time.perf_counter() - t
    ray.data.DataContext.get_current().wait_for_min_actors_s = -1  # Ray's default again
    result["resume"] = resume(texts[:300], out, args.model)
    # a poisoned doc and a doc that kills its actor once
    faulty_texts = texts[:120]
    faulty_texts[7] = "POISON " + faulty_texts[7]
    faulty_texts[70] = "CRASH " + faulty_texts[70]
    faulty = write_jsonl(out / "faulty.jsonl", faulty_texts)
    try:
        report = spacy_hf_ner.annotate(
            faulty, out / "faulty.parquet", args.faulty, code=FAULTS, engine="ray", workers=2, cpus_per_worker=0.5,
            batch_size=8, stall_timeout=240,
        )
        result["faults"] = {**summary(report), "crashed": flag.exists()}
    except Exception as e:  # reported to the test
        result["faults"] = {"error": f"{type(e).__name__}: {e}", "crashed": flag.exists()}
    # a pool that cannot fit: refused before anything starts
    t = time.perf_counter()
    try:
        spacy_hf_ner.annotate(corpus, out / "refused.parquet", args.model, engine="ray", workers=3, cpus_per_worker=1)
        result["refused"] = {"error": None}
    except ValueError as e:
        result["refused"] = {"error": str(e), "seconds": time.perf_counter() - t}
    result["refused"]["written"] = (out / "refused.parquet").exists()
    ray.shutdown()
    return result


def node_loss(args, out):
    import psutil
    import ray
    from ray.cluster_utils import Cluster

    import spacy_hf_ner

    texts = [line.rstrip("\n") for line in open(args.texts, encoding="utf8")]
    corpus = write_jsonl(out / "corpus.jsonl", texts)
    os.environ["ANNOTATE_SLEEP"] = "0.02"  # slow enough that the node goes mid-run
    # the head runs the driver only; each worker node holds one one-CPU actor at
    # most, so the node removed mid-run is one whose actor is annotating
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "include_dashboard": False, "object_store_memory": STORE},
    )
    nodes = [cluster.add_node(num_cpus=1, object_store_memory=STORE) for _ in range(3)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    quiet_ray_data()
    removed = {}

    def actor_pids(node):
        """The processes of `node` (its raylet's children) and whether one is an annotating actor."""
        raylet = node.all_processes["raylet"][0].process.pid
        children = psutil.Process(raylet).children(recursive=True)
        return [p.pid for p in children], any("MapWorker" in " ".join(p.cmdline()) for p in children)

    def remove_when_parts_appear():
        # remove a node with an actor once the job has written a few parts
        parts = Path(str(out / "lost.parquet") + ".parts")
        deadline = time.time() + 300
        while time.time() < deadline and len(list(parts.glob("part-*.parquet"))) < 6:
            time.sleep(0.2)
        for node in nodes:
            pids, working = actor_pids(node)
            if working:
                removed["pids"] = pids
                cluster.remove_node(node, allow_graceful=False)
                removed["at"] = time.time()
                return

    killer = threading.Thread(target=remove_when_parts_appear, daemon=True)
    killer.start()
    try:
        report = spacy_hf_ner.annotate(
            corpus, out / "lost.parquet", args.faulty, code=FAULTS, engine="ray", workers=2, cpus_per_worker=1,
            batch_size=16, checkpoint_every=16, stall_timeout=240, max_retries=5,
        )
        result = summary(report)
    except Exception as e:
        result = {"error": f"{type(e).__name__}: {e}"}
    finished = time.time()
    killer.join(timeout=5)
    result["node_removed"] = "at" in removed
    result["removed_mid_run"] = removed.get("at", finished) < finished
    # documents annotated by a worker of the doomed node before it went
    result["doomed_node_docs"] = sum(n for w, n in result.get("workers", {}).items() if int(w.rsplit(":", 1)[1]) in removed.get("pids", []))
    ray.shutdown()
    cluster.shutdown()
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=["engines", "node-loss"])
    parser.add_argument("--model", required=True, help="a model or pipeline")
    parser.add_argument("--faulty", required=True, help="a pipeline with tests/annotate_faults.py components")
    parser.add_argument("--texts", required=True, help="one text per line")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"engines": engines, "node-loss": node_loss}[args.scenario](args, out)
    (out / "result.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    sys.stdout.flush()
    os._exit(0)  # no lingering Ray threads at exit


if __name__ == "__main__":
    main()
