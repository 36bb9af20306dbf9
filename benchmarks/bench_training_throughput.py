"""Training throughput of the paper's networks, and the time it implies for the full run.

For each network (at its pretraining size unless --size is given) and each precision (float32,
mixed float16), on whatever device TensorFlow sees (a GPU when there is one):

- model alone: images/s of training steps fed in-memory tensors already on the device's input
  size, and of inference (predict) steps;
- cellmoa's input pipeline alone: crops/s it delivers (HDF5 per-crop reads of crops of the real
  geometry, 512 x 640 x 3 float16, resize, augmentation, preprocess_input), no model;
- both: images/s of training steps fed by that pipeline, and its ratio to the model alone.

Then the implied time of the full run (every network x fold of config/config.yaml): each
network's training images (epochs x training crops of every fold) at its measured training
rate plus its inference images (held-out predictions + embeddings of every crop per fold) at its
inference rate. The crop counts come from BBBC021's metadata CSVs when --metadata-dir is given
(with the config's restrictions and crop grid), else from the tensors file given with --tensors.

    .venv/bin/python benchmarks/bench_training_throughput.py \
        --metadata-dir resources/bbbc021/metadata
    .venv/bin/python benchmarks/bench_training_throughput.py --networks ResNet50 \
        --precisions float32 --steps 5 --metadata-dir ../shared/bbbc021  # what fits a 2-core CPU

All figures of one invocation come from the same process on the same device.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402


def crop_metadata(args):
    """One row per crop of the configured run, or None."""
    import pandas as pd
    import yaml

    from cellmoa.data.datasets import get_dataset
    from cellmoa.preprocess.plates import restrict
    from cellmoa.preprocess.tensors import read_crop_metadata

    config = yaml.safe_load(Path(args.config).read_text())
    if args.tensors:
        return config, read_crop_metadata(args.tensors)
    if not args.metadata_dir:
        return config, None
    dataset = get_dataset(config.get("dataset", "bbbc021"))
    fields = dataset.read_metadata(Path(args.metadata_dir))
    fields = fields[fields["plate"].isin(config["data"]["plates"])]
    fields = dataset.labelled(restrict(fields, config.get("preprocessing", {}).get("restrictions")))
    crops = config.get("preprocessing", {}).get("crops", {})
    per_field = crops.get("rows", dataset.crop_grid[0]) * crops.get("cols", dataset.crop_grid[1])
    return config, pd.DataFrame(fields.loc[fields.index.repeat(per_field)]).reset_index(drop=True)


def fake_tensors(folder: Path, n: int, height: int, width: int) -> Path:
    """A tensors file of n random crops of the given geometry (only /images and its channels)."""
    import h5py

    path = folder / "crops.h5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        images = f.create_dataset(
            "images", (n, height, width, 3), np.float16, chunks=(1, height, width, 3)
        )
        for i in range(n):
            images[i] = rng.normal(size=(height, width, 3)).astype(np.float16)
        f.attrs["channels"] = ["DAPI", "Tubulin", "Actin"]
    return path


def rate(step, steps: int, images_per_step: int, warmup: int) -> float:
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * images_per_step / (time.perf_counter() - start)


def measure(network: str, size: int, precision: str, args, tensors: Path) -> dict:
    import keras
    import tensorflow as tf

    from cellmoa.train import models
    from cellmoa.train.backends import configure_tensorflow
    from cellmoa.train.pipeline import make_dataset
    from cellmoa.train.settings import TrainSettings

    settings = TrainSettings(
        network=network,
        input_size=size,
        weights=None,
        batch_size=args.batch,
        seed=0,
        mixed_precision=precision == "mixed",
        deterministic=args.deterministic,
    )
    configure_tensorflow(settings)
    model = models.build_classifier(network, 12, size, None)
    model.compile(
        optimizer=keras.optimizers.SGD(1e-4, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        jit_compile=False,
    )
    n = args.crops
    labels = np.arange(n) % 12
    x = tf.constant(
        np.random.default_rng(0).uniform(-100, 100, (args.batch, size, size, 3)).astype("float32")
    )
    y = tf.constant(labels[: args.batch])
    out = {"network": network, "size": size, "precision": precision}
    out["model_train"] = rate(
        lambda: model.train_on_batch(x, y), args.steps, args.batch, args.warmup
    )
    predict = tf.function(lambda images: model(images, training=False))
    out["model_infer"] = rate(lambda: predict(x).numpy(), args.steps, args.batch, args.warmup)

    epochs = max(1, math.ceil((args.steps + args.warmup + 3) * args.batch / n))
    pipeline = make_dataset(
        tensors, np.arange(n), labels, settings, training=True, epochs=range(epochs)
    )
    batches = iter(pipeline)
    out["pipeline"] = rate(lambda: next(batches), args.steps, args.batch, args.warmup)
    fed = make_dataset(tensors, np.arange(n), labels, settings, training=True, epochs=range(epochs))
    model.fit(
        fed, epochs=1, steps_per_epoch=args.warmup, shuffle=False, verbose=0
    )  # traces fit's step outside the clock
    start = time.perf_counter()
    model.fit(fed, epochs=1, steps_per_epoch=args.steps, shuffle=False, verbose=0)
    out["pipeline_train"] = args.steps * args.batch / (time.perf_counter() - start)
    keras.backend.clear_session()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--networks", nargs="+", default=["ResNet50", "InceptionV3", "InceptionResNetV2"]
    )
    parser.add_argument(
        "--precisions", nargs="+", default=["float32", "mixed"], choices=["float32", "mixed"]
    )
    parser.add_argument(
        "--size", type=int, default=None, help="input size (default: each network's own)"
    )
    parser.add_argument("--batch", type=int, default=8, help="batch size (the paper: 8)")
    parser.add_argument("--steps", type=int, default=50, help="timed steps per figure")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps before each figure")
    parser.add_argument(
        "--crops", type=int, default=256, help="crops in the benchmark's tensors file"
    )
    parser.add_argument(
        "--crop-shape", type=int, nargs=2, default=[512, 640], help="stored crop height width"
    )
    parser.add_argument(
        "--deterministic",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="deterministic ops, as training runs by default",
    )
    parser.add_argument(
        "--config", default=str(ROOT / "config" / "config.yaml"), help="the run to estimate"
    )
    parser.add_argument(
        "--metadata-dir", help="folder with the dataset's metadata CSVs, for the crop counts"
    )
    parser.add_argument(
        "--tensors", help="an assembled tensors file (all.h5), for the crop counts instead"
    )
    args = parser.parse_args()

    import tensorflow as tf

    from cellmoa.train import networks
    from cellmoa.train.folds import run_workload

    gpus = tf.config.list_physical_devices("GPU")
    device = ", ".join(
        tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus
    )
    print(
        f"device: {device or 'CPU only'}; TensorFlow {tf.__version__}; batch {args.batch}; "
        f"deterministic ops {'on' if args.deterministic else 'off'}"
    )
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tensors = fake_tensors(Path(tmp), args.crops, *args.crop_shape)
        for network in args.networks:
            size = args.size or networks.network(network).default_size
            for precision in args.precisions:
                r = measure(network, size, precision, args, tensors)
                results.append(r)
                print(
                    f"{network:>18} {size:>3} px {precision:>7}: "
                    f"model alone train {r['model_train']:8.1f} img/s, "
                    f"infer {r['model_infer']:8.1f} img/s | "
                    f"pipeline alone {r['pipeline']:8.1f} crops/s | "
                    f"pipeline + model train {r['pipeline_train']:8.1f} img/s "
                    f"(= {r['pipeline_train'] / r['model_train']:.2f} x model alone)",
                    flush=True,
                )

    config, metadata = crop_metadata(args)
    if metadata is None:
        print("no --metadata-dir or --tensors: no full-run estimate")
        return
    training = config["training"]
    held_out = training["folds"].get("held_out", training["folds"].get("compounds"))
    print(
        f"full run of {args.config}: {len(training['networks'])} networks x {len(held_out)} folds, "
        f"{len(metadata)} crops"
    )
    for precision in args.precisions:
        total = 0.0
        parts = []
        for network in training["networks"]:
            per_net = {**training, **(training.get("per_network") or {}).get(network, {})}
            r = next(
                (r for r in results if r["network"] == network and r["precision"] == precision),
                None,
            )
            if r is None:
                parts.append(f"{network}: not measured")
                continue
            work = run_workload(
                metadata,
                held_out,
                training["folds"].get("scheme", "nsc"),
                per_net.get("epochs", 10),
            )
            seconds = (
                work["train_images"] / r["pipeline_train"]
                + work["inference_images"] / r["model_infer"]
            )
            total += seconds
            parts.append(
                f"{network}: {work['train_images']:,} training + "
                f"{work['inference_images']:,} inference "
                f"images = {seconds / 3600:.2f} h"
            )
        print(
            f"  {precision}: "
            + "; ".join(parts)
            + f"; measured networks together: {total / 3600:.2f} h"
        )


if __name__ == "__main__":
    main()
