"""The two input pipelines and two Keras backends on this machine's CPU, in one run.

1. Input pipeline alone: crops/s of tf.data (the TensorFlow backend's) and of the numpy reader
   threads (JAX's and PyTorch's), over the same HDF5 file of 512 x 640 x 3 float16 crops, resized
   to 224 px with all four augmentations, ``preprocess_input`` included; ratio numpy / tf.data.
2. Training: images/s of ResNet50 steps (batch 8, in-memory inputs, each backend in its own
   process, an untimed epoch first) on TensorFlow and on JAX with XLA; ratio JAX / TensorFlow.

    .venv/bin/python benchmarks/bench_backends.py [--size 224 --steps 40 --train-size 64]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def pipeline_rate(
    backend: str, tensors: Path, n: int, size: int, steps: int, threads: int
) -> float:
    import numpy as np

    from cellmoa.train.pipeline import make_dataset
    from cellmoa.train.settings import TrainSettings

    settings = TrainSettings(
        network="ResNet50",
        input_size=size,
        weights=None,
        batch_size=8,
        backend=backend,
        threads=threads,
        seed=0,
        inputs="stream",  # the streaming pipelines (bench_input_pipeline.py: the memory mode)
    )
    epochs = range(-(-(steps + 2) * 8 // n) + 1)
    batches = iter(
        make_dataset(
            tensors, np.arange(n), np.arange(n) % 12, settings, training=True, epochs=epochs
        )
    )
    next(batches)
    next(batches)
    start = time.perf_counter()
    for _ in range(steps):
        next(batches)
    return steps * 8 / (time.perf_counter() - start)


def train_worker(size: int, steps: int) -> None:
    import keras
    import numpy as np

    from cellmoa.train import models

    keras.utils.set_random_seed(0)
    model = models.build_classifier("ResNet50", 12, size, None)
    model.compile(
        optimizer=keras.optimizers.SGD(1e-4, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        jit_compile=keras.backend.backend() == "jax",
    )
    x = np.random.default_rng(0).uniform(-1, 1, (steps * 8, size, size, 3)).astype("float32")
    y = np.arange(steps * 8) % 12
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    print(
        "RESULT "
        + json.dumps(
            {"backend": keras.backend.backend(), "img_s": steps * 8 / (time.perf_counter() - start)}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=224, help="pipeline output size")
    parser.add_argument("--steps", type=int, default=40, help="timed batches of 8")
    parser.add_argument(
        "--train-size", type=int, default=64, help="ResNet50 input size of the training figure"
    )
    parser.add_argument("--train-steps", type=int, default=12)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        train_worker(args.train_size, args.train_steps)
        return
    import h5py
    import numpy as np

    threads = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        tensors = Path(tmp) / "crops.h5"
        n = 64
        with h5py.File(tensors, "w") as f:
            images = f.create_dataset(
                "images", (n, 512, 640, 3), np.float16, chunks=(1, 512, 640, 3)
            )
            rng = np.random.default_rng(0)
            for i in range(n):
                images[i] = rng.normal(size=(512, 640, 3)).astype(np.float16)
            f.attrs["channels"] = ["DAPI", "Tubulin", "Actin"]
        rates = {
            b: pipeline_rate(b, tensors, n, args.size, args.steps, threads)
            for b in ("tensorflow", "jax")
        }
    print(
        f"input pipeline alone, 512 x 640 x 3 float16 crops -> {args.size} px, "
        f"all augmentations, {threads} threads:"
    )
    print(
        f"  tf.data {rates['tensorflow']:.1f} crops/s; "
        f"numpy reader threads {rates['jax']:.1f} crops/s "
        f"= {rates['jax'] / rates['tensorflow']:.2f}x tf.data"
    )
    train = {}
    for backend in ("tensorflow", "jax"):
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--worker",
                "--train-size",
                str(args.train_size),
                "--train-steps",
                str(args.train_steps),
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if proc.returncode or not line:
            print(f"{backend}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        train[backend] = json.loads(line[-1][7:])["img_s"]
    if len(train) == 2:
        print(
            f"ResNet50 training at {args.train_size} px, batch 8, in-memory inputs: "
            f"TensorFlow {train['tensorflow']:.1f} img/s; JAX (XLA) {train['jax']:.1f} img/s "
            f"= {train['jax'] / train['tensorflow']:.2f}x TensorFlow"
        )


if __name__ == "__main__":
    main()
