"""How many Ray actors a job gets, whether they fit, and how the input is cut
(pure: no Ray import)."""
import math
from typing import Optional, Tuple

from ..errors import Errors

# blocks per actor at least, so that every actor gets work
BLOCKS_PER_WORKER = 4
# CPUs kept free for Ray Data's own tasks (reading, splitting)
RESERVED_CPUS = 1.0


def check_resources(
    cpus: float, gpus: float, workers: int, cpus_per_worker: float, gpus_per_worker: float, reserve: float = RESERVED_CPUS
) -> None:
    """Refuse (E107) a pool of `workers` actors that the cluster's `cpus` and
    `gpus` cannot hold next to `reserve` CPUs for Ray Data's own tasks: Ray
    would wait for it forever."""
    if workers < 1:
        fix = f"the cluster has {cpus:g} CPUs: use --cpus-per-worker {max(cpus - reserve, 0.1):.2g} with --workers 1"
        raise ValueError(Errors.E107.format(problem="no worker fits", fix=fix))
    if gpus_per_worker > 0 and gpus <= 0:
        raise ValueError(
            Errors.E107.format(
                problem=f"--gpus-per-worker {gpus_per_worker:g} asks for GPUs and the cluster has none",
                fix="use --gpus-per-worker 0, or add GPU nodes",
            )
        )
    problems = []
    options = []
    need = workers * cpus_per_worker + reserve
    fit = int((cpus - reserve) // cpus_per_worker + 1e-9) if cpus > reserve else 0
    if need > cpus + 1e-9:
        problems.append(
            f"{workers} worker(s) x {cpus_per_worker:g} CPU + {reserve:g} CPU for Ray Data's own tasks "
            f"= {need:g} CPUs, and the cluster has {cpus:g}"
        )
        if cpus > reserve:
            options.append(f"--cpus-per-worker {math.floor((cpus - reserve) / workers * 100) / 100:g}")
    if gpus_per_worker > 0:
        fit = min(fit, int(gpus // gpus_per_worker + 1e-9))
        if workers * gpus_per_worker > gpus + 1e-9:
            problems.append(
                f"{workers} worker(s) x {gpus_per_worker:g} GPU = {workers * gpus_per_worker:g} GPUs, "
                f"and the cluster has {gpus:g}"
            )
            options.append(f"--gpus-per-worker {math.floor(gpus / workers * 100) / 100:g} (fractions share a GPU)")
    if problems:
        if fit >= 1:
            options.insert(0, f"--workers {fit}")
        raise ValueError(
            Errors.E107.format(problem="; ".join(problems), fix=" or ".join(options) or "add CPUs to the cluster")
        )


def plan_workers(
    cpus: float, gpus: float, workers: Optional[int], cpus_per_worker: float, gpus_per_worker: Optional[float]
) -> Tuple[int, float]:
    """(workers, gpus per worker) with the defaults filled: one actor per GPU
    on a cluster with GPUs, else as many as the CPUs hold."""
    if gpus_per_worker is None:
        gpus_per_worker = 1.0 if gpus > 0 else 0.0
    if workers is None:
        if gpus_per_worker > 0:
            workers = max(1, int(gpus // gpus_per_worker))
        else:
            workers = int((cpus - RESERVED_CPUS) // cpus_per_worker) if cpus_per_worker > 0 else 1
    return workers, gpus_per_worker


def unit_rows(n: int, workers: int, checkpoint_every: int) -> int:
    """Records per unit (and per part): at most `checkpoint_every`, and few
    enough that every actor gets `BLOCKS_PER_WORKER` units."""
    return max(1, min(checkpoint_every, math.ceil(n / (workers * BLOCKS_PER_WORKER))))
