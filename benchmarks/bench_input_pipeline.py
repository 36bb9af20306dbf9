"""Input-pipeline benchmark: crops/s the two input modes deliver on this machine's cores, side by
side in one run, at 224 and 299 px, from crops of BBBC021's geometry (512 x 640 x 3 float16
z-scores, one HDF5 chunk per crop, as the pipeline writes them).

- stream: ``training.inputs: stream`` on the numpy pipeline (the JAX/PyTorch backends' loader):
  every batch read from HDF5, resized, augmented and preprocessed by the reader threads.
- memory (host feed): ``training.inputs: memory``: what the CPU does per batch, an index gather
  from a cache of ``--cache-crops`` crops plus the batch's draws; augmentation and preprocessing
  run on the device (a GPU on the GPU machine), measured apart below.
- memory + device work on this CPU: the same batches made network inputs by the ``keras.ops``
  function (Keras on JAX's CPU backend here), for a machine without a GPU.

Also the time to fill the cache, measured on ``--fill`` crops and extrapolated (linearly: the fill
reads and resizes crops one by one) to a BBBC021-sized fold of 4,832 crops, and the cache's size.

    .venv/bin/python benchmarks/bench_input_pipeline.py [--crops 96 --batches 200 --sizes 224 299]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BBBC021_FOLD = 4832


def make_crops(folder: Path, n: int) -> Path:
    """``n`` crops of 512 x 640 x 3 float16 z-scores (8 distinct ones, repeated)."""
    import h5py
    import numpy as np

    path = folder / "crops.h5"
    rng = np.random.default_rng(0)
    block = rng.normal(size=(8, 512, 640, 3)).astype(np.float16)
    with h5py.File(path, "w") as f:
        images = f.create_dataset("images", (n, 512, 640, 3), np.float16, chunks=(1, 512, 640, 3))
        for i in range(n):
            images[i] = block[i % 8]
        f.attrs["channels"] = ["DAPI", "Tubulin", "Actin"]
    return path


def rate(batches, n_batches: int, batch: int) -> float:
    """Crops/s over ``n_batches`` batches after a first untimed one (the threads, compilation)."""
    import numpy as np

    def done(b):
        first = b[0]
        if hasattr(first, "block_until_ready"):
            first.block_until_ready()
        else:
            np.asarray(first)

    done(next(batches))
    start = time.perf_counter()
    for _ in range(n_batches):
        done(next(batches))
    return n_batches * batch / (time.perf_counter() - start)


def measure(tensors: Path, size: int, args) -> dict:
    import numpy as np

    from cellmoa.train import memory
    from cellmoa.train.device_augment import batch_draws
    from cellmoa.train.inputs import InputSpec
    from cellmoa.train.numpy_pipeline import made_ahead, numpy_batches, training_plan
    from cellmoa.train.settings import TrainSettings

    settings = TrainSettings(
        network="ResNet50" if size == 224 else "InceptionV3",
        input_size=size,
        weights=None,
        batch_size=args.batch,
        backend="jax",
        threads=args.threads,
        seed=0,
    )
    index = np.arange(args.crops)
    labels = index % 12
    epochs = range(-(-(args.batches + 1) * args.batch // args.crops) + 1)
    stream = numpy_batches(tensors, index, labels, settings, training=True, epochs=epochs)
    out = {"stream": rate(stream, args.stream_batches, args.batch)}
    stream.close()

    memory.release()
    spec = InputSpec.read(tensors, settings, training=True)
    start = time.perf_counter()
    cache = memory.crop_cache(tensors, index[: args.fill], spec, args.threads)
    out["fill_s"] = time.perf_counter() - start
    out["fill_crops"] = args.fill
    out["peak_bytes"] = memory.check_memory(BBBC021_FOLD, spec, args.threads)
    out["cache_bytes"] = memory.cache_bytes(BBBC021_FOLD, size, 3)
    memory.release()
    cache = memory.crop_cache(tensors, index, spec, args.threads)
    # the gather is timed on a cache of --cache-crops rows (the filled crops tiled), far larger
    # than the CPU's caches, as a fold's is
    big = np.resize(cache.images, (args.cache_crops, *cache.images.shape[1:]))
    big_labels = np.arange(args.cache_crops) % 12
    plan = training_plan(args.cache_crops, args.batch, 0, range(4))

    def gather(item):
        number, rows = item
        return (big[rows], *batch_draws((1, number), len(rows), 3), big_labels[rows])

    out["memory"] = rate(made_ahead(gather, plan, args.threads), args.batches, args.batch)
    device = memory.memory_batches(tensors, index, labels, settings, epochs=range(200))
    out["device"] = rate(device, args.device_batches, args.batch)
    device.close()
    memory.release()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--crops", type=int, default=96, help="crops in the file (and the cache)")
    parser.add_argument("--fill", type=int, default=96, help="crops of the timed fill")
    parser.add_argument(
        "--cache-crops", type=int, default=2000, help="rows of the cache the gather is timed on"
    )
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--batches", type=int, default=200, help="timed memory-mode batches")
    parser.add_argument("--stream-batches", type=int, default=6)
    parser.add_argument("--device-batches", type=int, default=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 299])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tensors = make_crops(Path(tmp), args.crops)
        print(
            f"{os.cpu_count()} cores, {args.threads} threads, batch {args.batch}, "
            f"{args.crops} crops of 512 x 640 x 3 float16, all four augmentations"
        )
        for size in args.sizes:
            r = measure(tensors, size, args)
            fold_s = r["fill_s"] / r["fill_crops"] * BBBC021_FOLD
            print(f"\n{size} px")
            print(f"  stream (read + resize + augment on the CPU) : {r['stream']:9.1f} crops/s")
            print(f"  memory (host feed: gather + draws)          : {r['memory']:9.1f} crops/s")
            print(
                f"  memory / stream                             : "
                f"{r['memory'] / r['stream']:9.1f} x"
            )
            print(f"  memory + device work on this CPU (JAX)      : {r['device']:9.1f} crops/s")
            print(
                f"  fill: {r['fill_crops']} crops in {r['fill_s']:.1f} s "
                f"({r['fill_crops'] / r['fill_s']:.1f} crops/s); a {BBBC021_FOLD}-crop fold "
                f"extrapolated: {fold_s:.0f} s"
            )
            print(
                f"  cache of {BBBC021_FOLD} crops: {r['cache_bytes'] / 1e9:.2f} GB float16; "
                f"peak of its fill {r['peak_bytes'] / 1e9:.2f} GB"
            )


if __name__ == "__main__":
    main()
