"""The GPU check: how fast the paper's three networks train and predict on one GPU with Keras 3 on
JAX (and PyTorch), and how long the paper's full run would take. Run by ``gpu_check.sh``.

Every figure comes from a fresh worker process (one Keras backend and dtype policy per process)
fed in-memory random crops already at the network's input size: the model's own rate, what the
GPU can do. The input pipeline over an HDF5 file of crops of BBBC021's geometry (512 x 640 x 3
float16, made on the spot) is measured alone, in crops/s, in both modes (``training.inputs``):
memory (the crops cached at the network's input, gathered by index, augmented on the GPU) and
stream (numpy reader threads read, resize and augment every batch on the CPU); and the first
network is trained fed by the memory mode itself ("fed": the model with cellmoa's real feed and
augmentation), so a lent GPU measures the model, not the feed. Measurements run in order of
importance under a deadline (``--budget``); what did not fit is listed as skipped. Results are
written after every measurement (``gpu_check.json``, ``gpu_check.md`` in ``--out``), so a run
stopped early still leaves what it measured.

Goal: the paper's whole table, 3 networks x 38 folds x 10 epochs = 3 x (1,787,840 training +
188,448 inference) images, in one GPU-hour: >= 1,650 images/s averaged over the networks.
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

#: the paper's full run per network (BBBC021, 38 leave-one-compound-out folds, 10 epochs):
#: training images (epochs x training crops summed over folds) and inference images (held-out
#: predictions); the same for the three networks
FULL_RUN = {"train_images": 1_787_840, "inference_images": 188_448}
GOAL_IMAGES_PER_S = 1650
NETWORK_SIZES = {"ResNet50": 224, "InceptionV3": 299, "InceptionResNetV2": 299}
SMOKE_SIZES = {"ResNet50": 32, "InceptionV3": 75, "InceptionResNetV2": 75}


# ---------------------------------------------------------------- worker (one measurement)


def _device_memory(backend: str) -> int | None:
    """Peak bytes in use on the first accelerator, where the backend tells."""
    try:
        if backend == "jax":
            import jax

            stats = jax.devices()[0].memory_stats() or {}
            return int(stats.get("peak_bytes_in_use", 0)) or None
        if backend == "torch":
            import torch

            return int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001 - a figure we cannot read is left out, never fatal
        return None
    return None


def _device_name(backend: str) -> str:
    try:
        if backend == "jax":
            import jax

            return str(jax.devices()[0].device_kind)
        if backend == "torch":
            import torch

            return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except Exception:  # noqa: BLE001
        pass
    return "unknown"


def run_worker(spec: dict) -> dict:
    """Measure one (network, size, batch, precision, jit) on this process's backend: training
    images/s (a timed epoch after an untimed one that compiles) and inference images/s."""
    import keras
    import numpy as np

    from cellmoa.train import models

    backend = keras.backend.backend()
    policy = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}[
        spec["precision"]
    ]
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    size, batch, steps = spec["size"], spec["batch"], spec["steps"]
    model = models.build_classifier(spec["network"], 12, size, None)
    model.compile(
        optimizer=keras.optimizers.SGD(1e-4, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        jit_compile=spec["jit"],
    )
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.0, 1.0, (steps * batch, size, size, 3)).astype(np.float32)
    y = (np.arange(steps * batch) % 12).astype(np.int64)
    marks = {}

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            marks["begin"] = time.time()

        def on_epoch_end(self, epoch, logs=None):
            float(
                (logs or {}).get("loss", 0.0)
            )  # the epoch's results are on the host: the work is done
            marks["end"] = time.time()

    start = time.perf_counter()
    model.fit(
        x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0
    )  # compiles the step, warms up
    warm = time.perf_counter() - start
    if spec.get("barrier"):  # concurrent jobs: every job has compiled before any is timed
        folder = Path(spec["barrier"])
        (folder / f"ready-{os.getpid()}").touch()
        give_up = time.monotonic() + 300
        while len(list(folder.glob("ready-*"))) < spec["jobs"] and time.monotonic() < give_up:
            time.sleep(0.05)
    model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0, callbacks=[Clock()])
    out = dict(spec, backend=backend, device=_device_name(backend))
    seconds = marks["end"] - marks["begin"]
    out["compile_s"] = round(max(0.0, warm - seconds), 2)
    out["train_img_s"] = round(steps * batch / seconds, 1)
    out["window"] = [marks["begin"], marks["end"]]
    model.predict(x[: batch * 2], batch_size=batch, verbose=0)  # compiles the predict step
    t0 = time.perf_counter()
    model.predict(x, batch_size=batch, verbose=0)
    out["infer_img_s"] = round(steps * batch / (time.perf_counter() - t0), 1)
    out["peak_memory_mib"] = (lambda b: None if b is None else round(b / 2**20))(
        _device_memory(backend)
    )
    return out


def run_pipeline_worker(spec: dict) -> dict:
    """cellmoa's input pipeline alone, crops/s from an HDF5 file of BBBC021-sized crops, in both
    modes: memory (the cached crops gathered and augmented on the device, the cache filled first)
    and stream (numpy reader threads: read, resize, augment on the CPU)."""
    import numpy as np

    from cellmoa.train.inputs import steps_per_epoch
    from cellmoa.train.pipeline import make_dataset

    n, batch = spec["crops"], spec["batch"]
    labels = np.arange(n) % 12
    epochs = max(1, -(-spec["steps"] * batch // n))
    total = min(spec["steps"], steps_per_epoch(n, batch) * epochs)
    out = dict(spec, kind="pipeline")
    for mode in ("memory", "stream"):
        settings = _settings(spec, mode)
        start = time.perf_counter()
        batches = make_dataset(
            spec["tensors"], np.arange(n), labels, settings, True, epochs=range(epochs + 1)
        )
        _ready(next(batches))
        if mode == "memory":
            out["fill_s"] = round(time.perf_counter() - start, 2)
        t0 = time.perf_counter()
        for _ in range(total):
            last = next(batches)
        _ready(last)  # the device runs the batches in order: the last one done, all are
        out["crops_s" if mode == "memory" else "stream_crops_s"] = round(
            total * batch / (time.perf_counter() - t0), 1
        )
        batches.close()
    return out


def _settings(spec: dict, inputs: str):
    import keras

    from cellmoa.train.settings import TrainSettings

    return TrainSettings(
        network=spec["network"],
        input_size=spec["size"],
        weights=None,
        batch_size=spec["batch"],
        backend=keras.backend.backend(),
        threads=spec["threads"],
        seed=0,
        inputs=inputs,
    )


def _ready(batch) -> None:
    """Wait until a batch's images are computed (JAX dispatches asynchronously)."""
    first = batch[0]
    if hasattr(first, "block_until_ready"):
        first.block_until_ready()
    elif hasattr(first, "cpu"):
        first.cpu()


def run_fed_worker(spec: dict) -> dict:
    """The first network trained fed by the memory mode (cache, gather, augmentation on the
    device): training images/s of a timed epoch after one that compiles, and the cache's fill."""
    import keras
    import numpy as np

    from cellmoa.train import models
    from cellmoa.train.inputs import steps_per_epoch
    from cellmoa.train.pipeline import make_dataset

    keras.mixed_precision.set_global_policy(
        {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}[
            spec["precision"]
        ]
    )
    keras.utils.set_random_seed(0)
    n, batch, steps = spec["crops"], spec["batch"], spec["steps"]
    model = models.build_classifier(spec["network"], 12, spec["size"], None)
    model.compile(
        optimizer=keras.optimizers.SGD(1e-4, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        jit_compile=spec["jit"],
    )
    epochs = -(-2 * steps // steps_per_epoch(n, batch)) + 1
    start = time.perf_counter()
    data = make_dataset(
        spec["tensors"],
        np.arange(n),
        np.arange(n) % 12,
        _settings(spec, "memory"),
        True,
        epochs=range(epochs),
    )
    fill_s = time.perf_counter() - start
    marks = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            marks.append(time.time())

        def on_epoch_end(self, epoch, logs=None):
            float((logs or {}).get("loss", 0.0))  # the epoch's results are on the host
            marks.append(time.time())

    model.fit(data, epochs=2, steps_per_epoch=steps, verbose=0, callbacks=[Clock()])
    backend = keras.backend.backend()
    return dict(
        spec,
        backend=backend,
        device=_device_name(backend),
        fill_s=round(fill_s, 2),
        train_img_s=round(steps * batch / (marks[3] - marks[2]), 1),
        peak_memory_mib=(lambda b: None if b is None else round(b / 2**20))(
            _device_memory(backend)
        ),
    )


# ---------------------------------------------------------------- orchestration


def plan(smoke: bool, backends: list[str], networks: list[str]) -> list[dict]:
    """The measurements in order of importance (each a worker process, or a group run at once)."""
    sizes = SMOKE_SIZES if smoke else NETWORK_SIZES
    big, small, steps = (4, 2, 2) if smoke else (64, 8, 30)
    primary, first = backends[0], networks[0]

    def model(net, batch, precision, jit=True, backend=primary, **extra):
        return {
            "network": net,
            "size": sizes[net],
            "batch": batch,
            "precision": precision,
            "jit": jit,
            "backend": backend,
            "steps": steps if jit else 2,
            **extra,
        }

    pipeline = {
        "kind": "pipeline",
        "network": first,
        "size": sizes[first],
        "batch": small,
        "threads": 2 if smoke else (os.cpu_count() or 1),
        "steps": 4 if smoke else 100,
        "backend": primary,
    }
    concurrent = dict(model(first, big, "bfloat16"), kind="concurrent", jobs=2 if smoke else 3)
    fed = dict(model(first, big, "bfloat16"), kind="fed", threads=pipeline["threads"])
    if smoke:  # every code path once, on the smallest sizes
        return [
            model(first, big, "bfloat16"),
            pipeline,
            fed,
            concurrent,
            model(first, small, "float32", jit=False),
        ]
    # the recipe that should reach the goal (mixed bf16, XLA, a large batch) for every network,
    # then what the CPU can feed, several jobs on one GPU, the paper's recipe, the other levers
    items = [model(net, big, "bfloat16") for net in networks] + [pipeline, fed, concurrent]
    items += [
        model(first, small, "float32"),
        model(first, big, "float32"),
        model(first, big, "float16"),
        model(first, big, "bfloat16", deterministic=True),
        model(first, small, "bfloat16"),
        model(first, small, "float32", jit=False),
    ]
    for other in backends[1:]:
        items += [
            model(first, big, "bfloat16", jit=False, backend=other),
            model(first, big, "bfloat16", backend=other),
        ]
    items += [model(net, small, "float32") for net in networks[1:]]
    return items


def _worker_env(spec: dict) -> dict:
    env = dict(
        os.environ,
        KERAS_BACKEND=spec["backend"],
        XLA_PYTHON_CLIENT_PREALLOCATE="false",
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    if spec.get(
        "deterministic"
    ):  # what training.deterministic sets on JAX (cellmoa.train.backends.use_backend)
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_gpu_deterministic_ops=true").strip()
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "src"), env.get("PYTHONPATH", "")) if p
    )
    return env


def _start(spec: dict, python: str) -> subprocess.Popen:
    cmd = [python, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    return subprocess.Popen(
        cmd, env=_worker_env(spec), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _collect(proc: subprocess.Popen, timeout: float) -> dict:
    try:
        stdout, stderr = proc.communicate(timeout=max(1.0, timeout))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"error": f"stopped after {timeout:.0f} s (the deadline)"}
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {
            "error": f"exit {proc.returncode}: "
            + (stderr.strip().splitlines() or ["no output"])[-1][:400]
        }
    return json.loads(lines[-1][len("RESULT ") :])


def implied_hours(results: list[dict], networks: list[str]) -> dict | None:
    """The full run's hours at each network's best measured training and inference rates (any
    recipe), and the average images/s against the goal; None until every network is measured."""
    best = {}
    for net in networks:
        rows = [
            r
            for r in results
            if r.get("network") == net and "train_img_s" in r and not r.get("kind")
        ]
        if not rows:
            return None
        train = max(rows, key=lambda r: r["train_img_s"])
        infer = max(rows, key=lambda r: r["infer_img_s"])
        seconds = (
            FULL_RUN["train_images"] / train["train_img_s"]
            + FULL_RUN["inference_images"] / infer["infer_img_s"]
        )
        best[net] = {
            "hours": round(seconds / 3600, 3),
            "train": _label(train),
            "train_img_s": train["train_img_s"],
            "infer_img_s": infer["infer_img_s"],
        }
    hours = sum(b["hours"] for b in best.values())
    images = len(networks) * (FULL_RUN["train_images"] + FULL_RUN["inference_images"])
    return {
        "per_network": best,
        "hours": round(hours, 3),
        "images_per_s": round(images / (hours * 3600), 1),
        "goal_images_per_s": GOAL_IMAGES_PER_S,
        "goal_met": bool(images / (hours * 3600) >= GOAL_IMAGES_PER_S),
    }


def _label(r: dict) -> str:
    return (
        f"{r['backend']} {r['precision']} batch {r['batch']}{' XLA' if r.get('jit') else ''}"
        f"{' deterministic' if r.get('deterministic') else ''}"
    )


def markdown(report: dict) -> str:
    lines = [
        f"# GPU check {report['date']} ({report['mode']})",
        "",
        f"Device: {report.get('device', '?')}; Keras {report.get('keras', '?')}; "
        f"budget {report['budget_s']} s, "
        f"used {report['elapsed_s']} s.",
        "",
        "| backend | network | px | batch | precision | XLA | deterministic "
        "| train img/s | infer img/s | compile s | peak MiB |",
        "|---|---|---:|---:|---|---|---|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        if r.get("kind") or "train_img_s" not in r:
            continue
        lines.append(
            f"| {r['backend']} | {r['network']} | {r['size']} | {r['batch']} | {r['precision']} | "
            f"{'yes' if r['jit'] else 'no'} | {'yes' if r.get('deterministic') else 'no'} | "
            f"{r['train_img_s']} | {r['infer_img_s']} | {r['compile_s']} | "
            f"{r.get('peak_memory_mib') or '-'} |"
        )
    for r in report["results"]:
        if r.get("kind") == "concurrent" and "train_img_s" in r:
            alone = next(
                (
                    a["train_img_s"]
                    for a in report["results"]
                    if not a.get("kind")
                    and "train_img_s" in a
                    and all(
                        a.get(k) == r.get(k)
                        for k in ("network", "size", "batch", "precision", "jit", "backend")
                    )
                ),
                None,
            )
            lines.append(
                f"\n{r['jobs']} concurrent jobs ({_label(r)}, {r['network']}): "
                f"{r['train_img_s']} img/s together "
                f"(per job {', '.join(str(x) for x in r['per_job'])}; "
                f"one job alone: {alone or '-'})."
            )
        if r.get("kind") == "pipeline" and "crops_s" in r:
            lines.append(
                f"\nInput pipeline alone ({r['threads']} threads, 512 x 640 crops to {r['size']} "
                f"px, augmented): memory mode {r['crops_s']} crops/s (cache filled in "
                f"{r['fill_s']} s; augmentation on the device), stream mode (numpy reader "
                f"threads) {r['stream_crops_s']} crops/s."
            )
        if r.get("kind") == "fed" and "train_img_s" in r:
            lines.append(
                f"\n{r['network']} ({_label(r)}) fed by the memory mode (augmented on the "
                f"device): {r['train_img_s']} img/s training (cache filled in {r['fill_s']} s)."
            )
    implied = report.get("implied")
    if implied:
        lines.append(
            f"\nFull run ({len(implied['per_network'])} x (1,787,840 + 188,448) images) "
            f"at each network's best rates: "
            f"**{implied['hours']} h**, {implied['images_per_s']} images/s averaged "
            f"(goal >= {GOAL_IMAGES_PER_S}: {'met' if implied['goal_met'] else 'not met'})."
        )
        for net, b in implied["per_network"].items():
            lines.append(
                f"- {net}: {b['hours']} h (training at {b['train_img_s']} img/s, {b['train']})"
            )
    for r in report["results"]:
        if "error" in r:
            lines.append(
                f"\nFailed: {r.get('kind', 'model')} {r.get('network')} {r.get('precision', '')} "
                f"batch {r.get('batch')} on {r.get('backend')}: {r['error']}"
            )
    if report["skipped"]:
        lines.append(
            "\nSkipped (no time left): "
            + "; ".join(
                f"{s.get('kind', 'model')} {s['network']} {s.get('precision', '')} "
                f"batch {s['batch']} {s['backend']}"
                for s in report["skipped"]
            )
        )
    return "\n".join(lines) + "\n"


def make_crops(folder: Path, n: int, height: int, width: int) -> Path:
    """An HDF5 tensors file of n random crops of BBBC021's geometry (float16 z-scores, one chunk
    per crop, as the pipeline writes them)."""
    import h5py
    import numpy as np

    path = folder / "crops.h5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        images = f.create_dataset(
            "images", (n, height, width, 3), np.float16, chunks=(1, height, width, 3)
        )
        block = rng.normal(size=(8, height, width, 3)).astype(np.float16)
        for i in range(n):
            images[i] = block[i % 8]
        f.attrs["channels"] = ["DAPI", "Tubulin", "Actin"]
    return path


def orchestrate(args) -> dict:
    start = time.monotonic()
    deadline = start + args.budget
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    networks = args.networks or (["ResNet50"] if args.cpu_smoke else list(NETWORK_SIZES))
    items = plan(args.cpu_smoke, args.backends, networks)
    from importlib.metadata import PackageNotFoundError, version

    try:
        keras_version = version("keras")
    except PackageNotFoundError:
        sys.exit(
            "gpu_check: Keras is not installed for this python "
            "(gpu_check.sh installs it from benchmarks/wheels)"
        )
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "mode": "cpu-smoke" if args.cpu_smoke else "gpu",
        "budget_s": args.budget,
        "keras": keras_version,
        "python": sys.version.split()[0],
        "results": [],
        "skipped": [],
        "elapsed_s": 0,
    }
    with tempfile.TemporaryDirectory() as tmp:
        crops = None

        def save():
            report["elapsed_s"] = round(time.monotonic() - start, 1)
            report["implied"] = implied_hours(report["results"], networks)
            (out / "gpu_check.json").write_text(json.dumps(report, indent=1) + "\n")
            (out / "gpu_check.md").write_text(markdown(report))

        for item in items:
            left = deadline - time.monotonic()
            # a measurement needs its compile and steps: IRV2 on XLA compiles for ~1-2 min
            need = 20 if args.cpu_smoke else (120 if item["network"] == "InceptionResNetV2" else 60)
            if left < need:
                report["skipped"].append(item)
                continue
            label = json.dumps(item)
            print(f"[{time.monotonic() - start:6.1f} s] {label}", flush=True)
            kind = item.get("kind")
            if kind in ("pipeline", "fed"):
                if crops is None:
                    shape = (64, 64) if args.cpu_smoke else (512, 640)
                    crops = make_crops(Path(tmp), 16 if args.cpu_smoke else 256, *shape)
                spec = dict(item, tensors=str(crops), crops=16 if args.cpu_smoke else 256)
                result = dict(item, **_collect(_start(spec, args.python), left))
                result.pop("tensors", None)
            elif kind == "concurrent":
                barrier = Path(tempfile.mkdtemp(dir=tmp))
                procs = [
                    _start(dict(item, kind=None, barrier=str(barrier)), args.python)
                    for _ in range(item["jobs"])
                ]
                parts = [_collect(p, deadline - time.monotonic()) for p in procs]
                result = dict(item)
                if all("train_img_s" in p for p in parts):
                    result["per_job"] = [p["train_img_s"] for p in parts]
                    # together: every job's images over the span from the first start to the
                    # last end
                    span = max(p["window"][1] for p in parts) - min(p["window"][0] for p in parts)
                    result["train_img_s"] = round(
                        item["jobs"] * item["steps"] * item["batch"] / span, 1
                    )
                    result["peak_memory_mib"] = [p.get("peak_memory_mib") for p in parts]
                else:
                    result["error"] = "; ".join(p.get("error", "") for p in parts if "error" in p)
            else:
                result = dict(item, **_collect(_start(item, args.python), left))
            report["results"].append(result)
            if "device" in result:
                report.setdefault("device", result["device"])
            print(
                f"         -> {json.dumps({k: v for k, v in result.items() if k not in item})}",
                flush=True,
            )
            save()
        save()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=os.environ.get("OUT", "results/gpu_check"))
    parser.add_argument(
        "--budget",
        type=float,
        default=440.0,
        help="seconds for all measurements (default 440: the whole check ends within 8 minutes)",
    )
    parser.add_argument(
        "--backends",
        nargs="+",
        default=["jax", "torch"],
        choices=["jax", "torch", "tensorflow"],
        help="the first is measured fully, the others on ResNet50 only",
    )
    parser.add_argument("--networks", nargs="+", choices=list(NETWORK_SIZES))
    parser.add_argument(
        "--cpu-smoke", action="store_true", help="tiny sizes and steps on the CPU (CI)"
    )
    parser.add_argument(
        "--python", default=sys.executable, help="the interpreter of the worker processes"
    )
    args = parser.parse_args()
    if args.worker:
        spec = json.loads(args.worker)
        kind = spec.get("kind")
        run = {"pipeline": run_pipeline_worker, "fed": run_fed_worker}.get(kind, run_worker)
        result = run(spec)
        print("RESULT " + json.dumps(result), flush=True)
        return
    report = orchestrate(args)
    print(markdown(report))
    measured = [r for r in report["results"] if "error" not in r]
    if not measured:
        sys.exit("gpu_check: nothing was measured (see the errors above)")


if __name__ == "__main__":
    main()
