"""Input-pipeline benchmark at BBBC021's crop geometry: crops/s that cellmoa's training pipeline
delivers (batched reads, resize, batched augmentation, preprocess_input; no model) against a
per-crop baseline measured in the same run: the same steps mapped over single crops, with
``tf.nn.avg_pool2d`` as the 3 x 3 blur and ``tf.where`` selections (the pipeline cellmoa had
before).

    .venv/bin/python benchmarks/bench_augmentation.py [--crops 256 --seconds 15 --shape 512 640]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
from bench_training_throughput import fake_tensors  # noqa: E402


def per_crop_baseline(tensors: Path, n: int, size: int, network: str, batch: int):
    """One crop per map call: rot90 + flip, then intensity, avg-pool blur and noise.

    The selections are made with tf.where.
    """
    import h5py
    import tensorflow as tf

    from cellmoa.train import models

    preprocess = models.preprocess_fn(network)
    with h5py.File(tensors, "r") as f:
        shape, dtype = f["images"].shape[1:], f["images"].dtype
    state = {}

    def read(index):
        if "images" not in state:
            state["images"] = h5py.File(tensors, "r")["images"]
        return state["images"][int(index)]

    def load(index, seed):
        image = tf.numpy_function(read, [index], tf.as_dtype(dtype), stateful=False)
        image.set_shape(shape)
        image = tf.image.resize(tf.cast(image, tf.float32), (size, size))

        def sub(i):
            return tf.stack([seed[0], seed[1] + i])

        coins = tf.random.stateless_uniform([3], sub(3))
        image = tf.image.rot90(image, tf.random.stateless_uniform([], sub(1), 0, 4, dtype=tf.int32))
        image = tf.image.stateless_random_flip_left_right(image, sub(2))
        jitter = tf.random.stateless_uniform([image.shape[-1]], sub(4), 0.75, 1.25)
        image = tf.where(coins[0] < 0.5, image * jitter, image)
        image = tf.where(coins[1] < 0.5, tf.nn.avg_pool2d(image[None], 3, 1, "SAME")[0], image)
        noise = tf.random.stateless_normal(tf.shape(image), sub(5), stddev=0.1)
        image = tf.where(coins[2] < 0.5, image + noise, image)
        return preprocess(tf.clip_by_value(127.5 + 16.0 * image, 0.0, 255.0))

    seeds = tf.data.Dataset.random(seed=1).batch(2)
    ds = tf.data.Dataset.zip(
        tf.data.Dataset.from_tensor_slices(np.arange(n)).shuffle(n, seed=0), seeds
    )
    return (
        ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch)
        .prefetch(tf.data.AUTOTUNE)
        .repeat()
    )


def crops_per_second(dataset, batch: int, seconds: float) -> float:
    batches = iter(dataset)
    for _ in range(3):
        next(batches)
    start, count = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        next(batches)
        count += batch
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--crops", type=int, default=256)
    parser.add_argument(
        "--shape", type=int, nargs=2, default=[512, 640], help="stored crop height width"
    )
    parser.add_argument("--seconds", type=float, default=15.0, help="timed seconds per figure")
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()

    from cellmoa.train.pipeline import make_dataset
    from cellmoa.train.settings import TrainSettings

    with tempfile.TemporaryDirectory() as tmp:
        tensors = fake_tensors(Path(tmp), args.crops, *args.shape)
        print(
            f"{args.crops} crops of {args.shape[0]} x {args.shape[1]} x 3 float16, "
            f"batch {args.batch}, all four augmentations"
        )
        for network, size in (("ResNet50", 224), ("InceptionV3", 299)):
            settings = TrainSettings(
                network=network,
                input_size=size,
                weights=None,
                batch_size=args.batch,
                seed=0,
                inputs="stream",  # the streaming pipeline (bench_input_pipeline.py: memory mode)
            )
            labels = np.zeros(args.crops, np.int64)
            epochs = range(1000)  # more than the timed loop can use
            ours = crops_per_second(
                make_dataset(
                    tensors, np.arange(args.crops), labels, settings, training=True, epochs=epochs
                ),
                args.batch,
                args.seconds,
            )
            base = crops_per_second(
                per_crop_baseline(tensors, args.crops, size, network, args.batch),
                args.batch,
                args.seconds,
            )
            print(
                f"{network} at {size} px: per-crop baseline {base:7.1f} crops/s, "
                f"cellmoa {ours:7.1f} crops/s "
                f"= {ours / base:.2f}x"
            )


if __name__ == "__main__":
    main()
