"""Training-input benchmark: training steps/s of ResNet50 fed by cellmoa's real input pipeline
(per-crop HDF5 reads, resize, augmentation, preprocess_input in tf.data) against the same model
fed in-memory tensors of the same shape. Ratio from one run, on the CPU, at a small input size.

    .venv/bin/python benchmarks/bench_input_pipeline.py [--size 64 --steps 40 --network ResNet50]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def make_tensors(folder: Path) -> Path:
    from cellmoa.data.datasets import BBBC021
    from cellmoa.data.synthetic.bbbc021 import SyntheticSpec, synthesize
    from cellmoa.preprocess.jobs import build_tensors

    spec = SyntheticSpec(
        seed=2,
        weeks=1,
        plates_per_week=2,
        image_height=256,
        image_width=320,
        nucleus_radius=7,
        cells_per_field=35,
        sites_per_well=2,
    )
    raw = synthesize(spec, folder / "raw", archives=False)
    return build_tensors(BBBC021(), raw, folder, spec.plates())


def timed_fit(model, data, steps: int) -> float:
    model.fit(
        data, epochs=1, steps_per_epoch=3, shuffle=False, verbose=0
    )  # build and trace outside the timing
    start = time.perf_counter()
    model.fit(data, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--network", default="ResNet50")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    from cellmoa.preprocess.tensors import read_crop_metadata
    from cellmoa.train import models
    from cellmoa.train.backends import configure_tensorflow
    from cellmoa.train.pipeline import make_dataset
    from cellmoa.train.settings import TrainSettings

    with tempfile.TemporaryDirectory() as tmp:
        tensors = make_tensors(Path(tmp))
        meta = read_crop_metadata(tensors)
        settings = TrainSettings(
            network=args.network, input_size=args.size, weights=None, batch_size=args.batch, seed=0
        )
        configure_tensorflow(settings)
        classes = sorted(meta.moa.unique())
        labels = np.array([classes.index(m) for m in meta.moa])
        index = np.arange(len(meta))

        def fresh_model():
            model = models.build_classifier(args.network, len(classes), args.size, None)
            model.compile(
                optimizer=keras.optimizers.SGD(1e-4, momentum=0.9),
                loss="sparse_categorical_crossentropy",
                jit_compile=False,
            )
            return model

        pipeline = make_dataset(tensors, index, labels, settings, training=True).repeat()
        x = (
            np.random.default_rng(0)
            .uniform(-100, 100, (len(index), args.size, args.size, 3))
            .astype("float32")
        )
        in_memory = (
            tf.data.Dataset.from_tensor_slices((x, labels))
            .shuffle(len(index))
            .batch(args.batch)
            .repeat()
            .prefetch(2)
        )

        base = timed_fit(fresh_model(), in_memory, args.steps)
        real = timed_fit(fresh_model(), pipeline, args.steps)
        print(
            f"{args.network} at {args.size} px, batch {args.batch}, {args.steps} timed steps, "
            f"{len(index)} crops"
        )
        print(f"in-memory tensors : {base:.2f} steps/s")
        print(f"cellmoa pipeline  : {real:.2f} steps/s")
        print(f"time per step, pipeline / in-memory = {base / real:.3f}  (goal <= 1.10)")


if __name__ == "__main__":
    main()
