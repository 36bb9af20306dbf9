"""Preprocessing benchmark: a plate job (illumination + tensors) against the floor of only reading
the TIFFs and writing the same bytes to HDF5, and against a whole-plate-in-memory implementation
(the straightforward approach). Ratios come from one run on one machine.

    .venv/bin/python benchmarks/bench_preprocess.py [--height 512 --width 640 --sites 4]

Prints images/s and peak RSS (each measurement in its own process) for a plate and for the same
plate with 4x the wells.
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


def make_plate(folder: Path, height: int, width: int, sites: int, scale: int) -> dict:
    """A plate composed like a BBBC021 plate: of 60 wells, 6 DMSO, 12 with MoA-labelled
    treatments, 42 with unlabelled compounds (BBBC021: 29% of fields labelled or DMSO); ``scale``
    multiplies every kind of well."""
    from cellmoa.data.synthetic.bbbc021 import SyntheticSpec, synthesize

    moas = {
        m: [f"{m[:3]}-{i}" for i in range(2 * scale)]
        for m in ("DNA damage", "Actin disruptors", "Eg5 inhibitors")
    }
    spec = SyntheticSpec(
        seed=1,
        moas=moas,
        weeks=1,
        plates_per_week=1,
        sites_per_well=sites,
        image_height=height,
        image_width=width,
        nucleus_radius=height / 80,
        cells_per_field=80,
        dmso_wells_per_plate=6 * scale,
        unlabelled_compounds=[f"AZ-U{i}" for i in range(21 * scale)],
    )
    synthesize(spec, folder, archives=False)
    return {"plate": spec.plates()[0]}


def run_ours(folder: Path, plate: str, out: Path) -> int:
    from cellmoa.data.datasets import BBBC021
    from cellmoa.preprocess.illumination import IlluminationParams
    from cellmoa.preprocess.jobs import illumination_pass, write_plate_tensors
    from cellmoa.preprocess.plates import PlateFields

    ds = BBBC021()
    meta = ds.read_metadata(folder)
    rows = meta[meta.plate == plate]
    # what the illumination and tensors jobs do: one read of the whole plate for the function and
    # the DMSO statistics, then one read of the labelled fields
    functions, stats = illumination_pass(
        rows, folder, ds.channels, IlluminationParams(), reference=ds.reference(rows)
    )
    # the rules' threads: 2 (the tensors job gives each of its threads a field to prepare)
    write_plate_tensors(
        out,
        PlateFields(plate, ds.labelled(rows), ds.reference(rows), folder, ds.channels),
        functions,
        reference_stats=stats,
        prefetch=2,
    )
    return len(rows)


def run_floor(folder: Path, plate: str, out: Path) -> int:
    """Read every TIFF of the plate once and write its bytes to an HDF5 dataset."""
    import h5py
    import tifffile

    from cellmoa.data.datasets import BBBC021

    ds = BBBC021()
    meta = ds.read_metadata(folder)
    rows = meta[meta.plate == plate]
    with h5py.File(out, "w") as f:
        dset = None
        i = 0
        for _, row in rows.iterrows():
            for c in ds.channels:
                image = tifffile.imread(folder / row[f"file_{c}"])
                if dset is None:
                    dset = f.create_dataset(
                        "raw",
                        shape=(len(rows) * 3,) + image.shape,
                        dtype=image.dtype,
                        chunks=(1,) + image.shape,
                    )
                dset[i] = image
                i += 1
    return len(rows)


def run_in_memory(folder: Path, plate: str, out: Path) -> int:
    """The straightforward approach: load the whole plate, then compute on the stacked arrays."""
    import h5py
    import numpy as np
    import tifffile

    from cellmoa.data.datasets import BBBC021
    from cellmoa.preprocess.illumination import IlluminationParams, illumination_function

    ds = BBBC021()
    meta = ds.read_metadata(folder)
    rows = meta[meta.plate == plate].reset_index(drop=True)
    stack = np.stack(
        [
            np.stack(
                [tifffile.imread(folder / r[f"file_{c}"]).astype(np.float32) for c in ds.channels],
                -1,
            )
            for _, r in rows.iterrows()
        ]
    )
    functions = np.stack(
        [illumination_function(stack[..., k].mean(axis=0), IlluminationParams()) for k in range(3)],
        -1,
    )
    corrected = stack / functions
    dmso = corrected[(rows.compound == "DMSO").to_numpy()]
    mean, std = dmso.mean(axis=(0, 1, 2)), dmso.std(axis=(0, 1, 2))
    labelled = corrected[((rows.moa != "") & (rows.moa != "DMSO")).to_numpy()]
    z = ((labelled - mean) / std).astype(np.float16)
    h, w = z.shape[1] // 2, z.shape[2] // 2
    crops = np.concatenate(
        [z[:, r * h : (r + 1) * h, c * w : (c + 1) * w] for r in range(2) for c in range(2)]
    )
    with h5py.File(out, "w") as f:
        f.create_dataset("images", data=crops, chunks=(1,) + crops.shape[1:])
    return len(rows)


def child(kind: str, folder: str, plate: str, out: str) -> None:
    fn = {"ours": run_ours, "floor": run_floor, "in_memory": run_in_memory}[kind]
    # every variant imports the same libraries before the clock starts: a job pays them once per
    # plate (~0.3 s), which the benchmark's small plate would otherwise overweight
    import h5py  # noqa: F401,E401
    from skimage.transform import resize  # noqa: F401

    import cellmoa.preprocess.illumination  # noqa: F401,E401

    start = time.perf_counter()
    n = fn(Path(folder), plate, Path(out))
    seconds = time.perf_counter() - start
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork + exec
    hwm_kb = next(
        int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")
    )
    rss_mb = hwm_kb / 1024
    print(
        json.dumps(
            {
                "kind": kind,
                "fields": n,
                "seconds": seconds,
                "fields_per_s": n / seconds,
                "peak_rss_mb": rss_mb,
            }
        )
    )


def measure(kind: str, folder: Path, plate: str, tmp: Path) -> dict:
    out = tmp / f"{kind}.h5"
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(folder), plate, str(out)],
        capture_output=True,
        text=True,
    )
    out.unlink(missing_ok=True)
    if proc.returncode != 0:
        # the whole-plate-in-memory variant is killed for memory on large plates: say so
        why = (
            "killed (out of memory?)"
            if proc.returncode in (-9, 137)
            else f"failed ({proc.returncode})"
        )
        print(f"{kind}: {why}\n{proc.stderr[-2000:]}", file=sys.stderr)
        return {
            "kind": kind,
            "fields": 0,
            "seconds": float("nan"),
            "fields_per_s": float("nan"),
            "peak_rss_mb": float("nan"),
            "failed": why,
        }
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--sites", type=int, default=2)
    parser.add_argument("--child", nargs=4)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        results = {}
        for label, scale in (("plate", 1), ("plate x4 wells", 4)):
            folder = tmp / label.replace(" ", "_")
            plate = make_plate(folder, args.height, args.width, args.sites, scale)["plate"]
            # warm the page cache so every variant reads from memory alike
            measure("floor", folder, plate, tmp)
            results[label] = {
                k: measure(k, folder, plate, tmp) for k in ("floor", "ours", "in_memory")
            }
        print(
            f"\nfields of {args.height} x {args.width} x 3 channels, uint16 TIFF; "
            f"{os.cpu_count()} CPUs"
        )
        print(f"{'':16s} {'variant':10s} {'fields':>6s} {'fields/s':>9s} {'peak RSS MB':>12s}")
        for label, res in results.items():
            for kind, r in res.items():
                print(
                    f"{label:16s} {kind:10s} {r['fields']:6d} {r['fields_per_s']:9.1f} "
                    f"{r['peak_rss_mb']:12.0f} {r.get('failed', '')}"
                )
        print()
        for label, res in results.items():
            print(
                f"{label}: ours / floor throughput = "
                f"{res['ours']['fields_per_s'] / res['floor']['fields_per_s']:.2f}x; "
                f"ours / in-memory throughput = "
                f"{res['ours']['fields_per_s'] / res['in_memory']['fields_per_s']:.2f}x; "
                f"peak RSS ours {res['ours']['peak_rss_mb']:.0f} MB "
                f"vs in-memory {res['in_memory']['peak_rss_mb']:.0f} MB"
            )
        a, b = results["plate"], results["plate x4 wells"]
        print(
            f"peak RSS growth with 4x the wells: "
            f"ours {b['ours']['peak_rss_mb'] / a['ours']['peak_rss_mb']:.2f}x, "
            f"in-memory {b['in_memory']['peak_rss_mb'] / a['in_memory']['peak_rss_mb']:.2f}x"
        )


if __name__ == "__main__":
    main()
