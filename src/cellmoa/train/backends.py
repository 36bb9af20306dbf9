"""The Keras backend a training job runs on, and how it is set up before a model is built.

:func:`use_backend` picks the backend (``KERAS_BACKEND``) before Keras is first imported;
:func:`configure_backend` then sets seeds, determinism, threads, one GPU and mixed precision on
it (:func:`configure_tensorflow` for TensorFlow). Importing this module does not import Keras.
"""

from __future__ import annotations

import logging
import os
import sys

from cellmoa.train.gpus import claim_cuda_device, slurm_allocation, use_one_gpu
from cellmoa.train.settings import BACKENDS, TrainSettings

log = logging.getLogger(__name__)


def mixed_policy(settings: TrainSettings) -> str:
    """The Keras dtype policy of the settings' ``mixed_precision``.

    Examples
    --------
    >>> mixed_policy(TrainSettings(mixed_precision="bfloat16"))
    'mixed_bfloat16'
    """
    return {
        False: "float32",
        True: "mixed_float16",
        "float16": "mixed_float16",
        "bfloat16": "mixed_bfloat16",
    }[settings.mixed_precision]


def use_backend(backend: str, deterministic: bool = True) -> None:
    """Make Keras run on ``backend`` (``KERAS_BACKEND``), before Keras is first imported.

    Refuses when Keras is already loaded with another backend (a process has one backend for
    good). On JAX, ``deterministic`` asks XLA for deterministic GPU kernels (``XLA_FLAGS``).

    Parameters
    ----------
    backend : str
        One of :data:`~cellmoa.train.settings.BACKENDS`.
    deterministic : bool
        Ask the backend for deterministic GPU kernels (``training.deterministic``).

    Raises
    ------
    ValueError
        On an unknown backend.
    RuntimeError
        When Keras is already loaded with another backend.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if "keras" in sys.modules:
        loaded = sys.modules["keras"].backend.backend()
        if loaded != backend:
            raise RuntimeError(
                f"Keras is already loaded with the {loaded} backend in this process; "
                f"training.backend {backend} needs a new process started with "
                f"KERAS_BACKEND={backend}"
            )
        return
    os.environ["KERAS_BACKEND"] = backend
    if backend != "tensorflow":
        claim_cuda_device()  # TensorFlow claims its GPU in configure_tensorflow
    if backend == "jax":
        # like TensorFlow's memory growth: several jobs can share a GPU (JAX takes 75% by default)
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        if deterministic and "xla_gpu_deterministic_ops" not in os.environ.get("XLA_FLAGS", ""):
            os.environ["XLA_FLAGS"] = (
                os.environ.get("XLA_FLAGS", "") + " --xla_gpu_deterministic_ops=true"
            ).strip()
    if backend == "torch" and deterministic:
        # what deterministic cuBLAS needs
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def configure_backend(settings: TrainSettings) -> None:
    """Set seeds, determinism, threads, one GPU and mixed precision on the settings' backend.

    Call before building models; the GPU is claimed among several
    (:mod:`cellmoa.train.gpus`).

    Raises
    ------
    RuntimeError
        When Keras runs on another backend than ``settings.backend``.
    """
    import keras  # lazily: importing cellmoa.train must not import Keras

    if keras.backend.backend() != settings.backend:
        raise RuntimeError(
            f"training.backend is {settings.backend} but Keras runs on "
            f"{keras.backend.backend()}: start the job with KERAS_BACKEND={settings.backend} "
            "(cellmoa.train.backends.use_backend)"
        )
    if allocation := slurm_allocation():
        log.info("SLURM allocation: %s", allocation)
    if settings.backend == "tensorflow":
        configure_tensorflow(settings)
        return
    keras.utils.set_random_seed(settings.seed)
    keras.mixed_precision.set_global_policy(mixed_policy(settings))
    if settings.backend == "torch":
        _configure_torch(settings)
    else:
        import jax  # lazily: only a JAX job needs it

        log.info(
            "JAX %s; devices: %s (CUDA_VISIBLE_DEVICES=%s)",
            jax.__version__,
            jax.devices(),
            os.environ.get("CUDA_VISIBLE_DEVICES"),
        )


def _configure_torch(settings: TrainSettings) -> None:
    """PyTorch's threads and determinism."""
    import torch  # lazily: only a PyTorch job needs it

    if settings.threads:
        torch.set_num_threads(settings.threads)
    torch.use_deterministic_algorithms(settings.deterministic, warn_only=True)
    log.info(
        "PyTorch %s; CUDA devices: %d (CUDA_VISIBLE_DEVICES=%s)",
        torch.__version__,
        torch.cuda.device_count(),
        os.environ.get("CUDA_VISIBLE_DEVICES"),
    )


def configure_tensorflow(settings: TrainSettings) -> None:
    """Set seeds, determinism, threads, one GPU, GPU memory growth and mixed precision.

    TensorFlow's part of :func:`configure_backend`. Call before building models.
    """
    import keras  # lazily: importing cellmoa.train must not import Keras
    import tensorflow as tf

    if settings.threads:
        tf.config.threading.set_intra_op_parallelism_threads(settings.threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, settings.threads))
    for gpu in use_one_gpu(tf):
        tf.config.experimental.set_memory_growth(gpu, True)
    if not settings.graph_optimizer:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    keras.utils.set_random_seed(settings.seed)
    if settings.deterministic:
        tf.config.experimental.enable_op_determinism()
    else:
        from tensorflow.python.framework.config import disable_op_determinism

        disable_op_determinism()
    keras.mixed_precision.set_global_policy(mixed_policy(settings))
    log.info(
        "TensorFlow %s; GPUs used: %s (CUDA_VISIBLE_DEVICES=%s)",
        tf.__version__,
        [d.name for d in tf.config.get_visible_devices("GPU")],
        os.environ.get("CUDA_VISIBLE_DEVICES"),
    )
