"""One GPU per training job on a multi-GPU workstation.

Snakemake's ``--resources gpu=N`` counts GPUs but does not say which one a job gets, and
TensorFlow puts a job's work on the first GPU it sees: without help, N jobs on an N-GPU machine
would all train on GPU 0. A job that sees more than one GPU therefore claims one through lock
files (``flock``, released by the kernel when the job ends, however it ends) and hides the others.
It takes the least-shared GPU: slot 0 of every GPU before slot 1 of any, so ``--resources gpu=8``
on 4 GPUs puts two jobs on each. A job that sees one GPU (SLURM sets ``CUDA_VISIBLE_DEVICES``)
claims nothing.

The lock files live in ``$CELLMOA_GPU_LOCK_DIR`` (default: ``cellmoa-gpu-locks-<uid>`` in the
temporary folder), shared by every cellmoa run on the machine.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

#: a claimed lock stays held while its file is open, so the claim lives as long as the process
_held: list = []


def lock_dir() -> Path:
    """The folder of the GPU claim files (``CELLMOA_GPU_LOCK_DIR``, else a per-user temp folder)."""
    default = Path(tempfile.gettempdir()) / f"cellmoa-gpu-locks-{os.getuid()}"
    return Path(os.environ.get("CELLMOA_GPU_LOCK_DIR", default))


def claim_device(n_devices: int, folder: Path | None = None, max_slots: int = 64):
    """Claim the least-shared of ``n_devices`` devices.

    ``(index, handle)``; the claim holds while ``handle`` (an open file) stays open.
    """
    if n_devices < 1:
        raise ValueError("no device to claim")
    folder = Path(folder or lock_dir())
    folder.mkdir(parents=True, exist_ok=True)
    for slot in range(max_slots):
        for index in range(n_devices):
            handle = open(folder / f"gpu{index}.slot{slot}.lock", "a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            return index, handle
    raise RuntimeError(f"more than {max_slots} jobs per GPU hold locks in {folder}")


def use_one_gpu(tf) -> list:
    """Make TensorFlow see one GPU: the only one, or the one this process claims among several.

    Returns the visible GPUs. Call before TensorFlow initialises its devices.
    """
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) <= 1:
        return gpus
    index, handle = claim_device(len(gpus))
    _held.append(handle)
    tf.config.set_visible_devices([gpus[index]], "GPU")
    log.info(
        "%d GPUs visible without CUDA_VISIBLE_DEVICES narrowing them: this job claimed %s (lock "
        "%s)",
        len(gpus),
        gpus[index].name,
        handle.name,
    )
    return [gpus[index]]


def count_nvidia_gpus() -> int:
    """NVIDIA GPUs the driver shows (``/proc/driver/nvidia/gpus``), without initialising CUDA."""
    folder = Path("/proc/driver/nvidia/gpus")
    return len(list(folder.iterdir())) if folder.is_dir() else 0


def claim_cuda_device() -> int | None:
    """For the backends that read ``CUDA_VISIBLE_DEVICES`` when they start (JAX, PyTorch).

    On a machine with several GPUs and no ``CUDA_VISIBLE_DEVICES``, claim one (as
    :func:`use_one_gpu`) and narrow ``CUDA_VISIBLE_DEVICES`` to it. Returns the claimed index, or
    None. Call before the backend is imported.
    """
    if os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
        return None
    n = count_nvidia_gpus()
    if n <= 1:
        return None
    index, handle = claim_device(n)
    _held.append(handle)
    os.environ["CUDA_VISIBLE_DEVICES"] = str(index)
    log.info(
        "%d GPUs visible without CUDA_VISIBLE_DEVICES narrowing them: this job claimed GPU %d "
        "(lock %s)",
        n,
        index,
        handle.name,
    )
    return index


#: what SLURM puts in a job's environment about its allocation (GPU variables only when it has GPUs)
SLURM_VARIABLES = (
    "SLURM_JOB_ID",
    "SLURM_JOB_PARTITION",
    "SLURM_CPUS_ON_NODE",
    "SLURM_JOB_GPUS",
    "SLURM_GPUS_ON_NODE",
    "SLURM_GPUS",
    "SLURM_TRES_PER_TASK",
)


def slurm_allocation(environ=None) -> str | None:
    """The SLURM allocation this process runs in, as one line for the job's log.

    ``None`` outside SLURM; e.g. ``SLURM_JOB_ID=12 SLURM_JOB_GPUS=0 SLURM_GPUS_ON_NODE=1``. It stays
    in the log after the controller has forgotten the job (``MinJobAge``).
    """
    environ = os.environ if environ is None else environ
    if "SLURM_JOB_ID" not in environ:
        return None
    return " ".join(f"{name}={environ[name]}" for name in SLURM_VARIABLES if name in environ)
