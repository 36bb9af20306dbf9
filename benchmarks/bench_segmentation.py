"""Segmentation and feature benchmark: seconds per field at BBBC021's field size.

    .venv/bin/python benchmarks/bench_segmentation.py [--fields 3 --distinct 3]

Synthesizes ``--distinct`` DMSO fields of 1024 x 1280 (BBBC021's size; ~150 cells, nuclei ~24 px
across: radius 12) with :func:`cellmoa.data.synthetic.truth.synthetic_field`, then segments N and
4N fields (cycling through the distinct ones) one at a time, as a plate job would: nuclei from
DAPI, cells from them over Tubulin, the per-object table and QC kept, the labels dropped. Prints
seconds per field for nuclei and for cells, the peak of Python-traced memory (``tracemalloc``:
numpy's arrays included) for N and for 4N fields (flat: nothing grows with the fields but the
tables), the nuclei F1 against the truth, and the projection for the whole of BBBC021 (13,200
fields: 55 plates of 240, counted in ``../shared/bbbc021/BBBC021_v1_image.csv`` where present).
Then the CellProfiler measurements (cp-measure) of the segmented cells, group by group, on the
three channels (``Nuclei_*`` and ``Cells_*``), seconds per field each, and the projection of the
default groups (``features.groups``) and of the demo's.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

#: BBBC021's fields (55 plates x 240), when ../shared/bbbc021 is absent
BBBC021_FIELDS = 13200


def bbbc021_fields() -> int:
    """The number of fields in BBBC021's image table (the shared copy), else 13,200."""
    table = ROOT.parent / "shared" / "bbbc021" / "BBBC021_v1_image.csv"
    if not table.is_file():
        return BBBC021_FIELDS
    import pandas as pd

    return len(pd.read_csv(table, usecols=["ImageNumber"]))


def run(fields: list, n: int, settings) -> dict:
    """Segment ``n`` fields one at a time; seconds for nuclei and cells, peak traced memory."""
    import pandas as pd

    from cellmoa.segment.cells import segment_cells
    from cellmoa.segment.nuclei import segment_nuclei
    from cellmoa.segment.qc import field_qc, object_table

    t_nuclei = t_cells = 0.0
    tables, qcs = [], []
    tracemalloc.start()
    for i in range(n):
        field = fields[i % len(fields)]
        t0 = time.perf_counter()
        nuclei = segment_nuclei(field.images["DAPI"], settings)
        t1 = time.perf_counter()
        cells = segment_cells(field.images["Tubulin"], nuclei, settings)
        t2 = time.perf_counter()
        t_nuclei, t_cells = t_nuclei + t1 - t0, t_cells + t2 - t1
        name = f"field{i}"
        tables += [object_table(nuclei, "nucleus", name), object_table(cells, "cell", name)]
        qcs.append(field_qc(field.images["DAPI"], nuclei, cells, settings, name))
    objects = pd.concat(tables, ignore_index=True)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {
        "fields": n,
        "nuclei_s": t_nuclei / n,
        "cells_s": t_cells / n,
        "peak_mb": peak / 2**20,
        "objects": len(objects),
        "nuclei_per_field": sum(q["n_nuclei"] for q in qcs) / n,
        "usable": sum(q["usable"] for q in qcs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fields", type=int, default=3, help="N: fields of the first run")
    parser.add_argument("--distinct", type=int, default=3, help="distinct fields synthesized")
    args = parser.parse_args()

    from cellmoa.data.synthetic.bbbc021 import SyntheticSpec
    from cellmoa.data.synthetic.truth import synthetic_field
    from cellmoa.segment.matching import match_objects
    from cellmoa.segment.nuclei import segment_nuclei
    from cellmoa.segment.settings import SegmentationSettings

    spec = SyntheticSpec(
        image_height=1024, image_width=1280, nucleus_radius=12.0, cells_per_field=150
    )
    t0 = time.perf_counter()
    fields = [synthetic_field(spec, seed=k) for k in range(args.distinct)]
    print(f"synthesized {args.distinct} fields of 1024 x 1280 in {time.perf_counter() - t0:.1f} s")
    settings = SegmentationSettings(nucleus_diameter=24.0)
    f1 = [match_objects(f.nuclei, segment_nuclei(f.images["DAPI"], settings)) for f in fields]
    tp = sum(s["tp"] for s in f1)
    print(
        f"nuclei F1 at IoU 0.5 against the truth: "
        f"{2 * tp / sum(s['n_true'] + s['n_predicted'] for s in f1):.3f} "
        f"({sum(s['n_true'] for s in f1) / len(f1):.0f} true nuclei a field)"
    )
    results = [run(fields, n, settings) for n in (args.fields, 4 * args.fields)]
    for r in results:
        print(
            f"{r['fields']:3d} fields: nuclei {r['nuclei_s']:.3f} s/field, cells "
            f"{r['cells_s']:.3f} s/field, peak traced memory {r['peak_mb']:.0f} MiB, "
            f"{r['nuclei_per_field']:.0f} nuclei/field, {r['usable']}/{r['fields']} usable"
        )
    per_field = results[-1]["nuclei_s"] + results[-1]["cells_s"]
    total = bbbc021_fields()
    print(
        f"projection for BBBC021 ({total} fields): {per_field:.2f} s/field x {total} = "
        f"{per_field * total / 3600:.1f} CPU hours on one core (nuclei "
        f"{results[-1]['nuclei_s'] * total / 3600:.1f} h, cells "
        f"{results[-1]['cells_s'] * total / 3600:.1f} h), reading the TIFFs not included"
    )
    report_features(fields, args.fields, settings, per_field)


def features(fields: list, n: int, settings) -> tuple[dict, int]:
    """Seconds per field of each feature group on ``n`` segmented fields, and the cells a field."""
    from cellmoa.features.jobs import paired_labels
    from cellmoa.features.measure import (
        CORRELATIONS,
        INTENSITY_GROUPS,
        SHAPE_GROUPS,
        FeatureSettings,
        measure_objects,
        unit_scale,
    )
    from cellmoa.segment.fields import segment_field

    seconds = dict.fromkeys([*SHAPE_GROUPS, *INTENSITY_GROUPS, *CORRELATIONS], 0.0)
    cells = 0
    for i in range(n):
        field = fields[i % len(fields)]
        seg = segment_field(field.images["DAPI"], field.images["Tubulin"], settings)
        labels = paired_labels(seg.nuclei, seg.cells)
        images = {c: unit_scale(field.images[c], 65535) for c in ("DAPI", "Tubulin", "Actin")}
        cells += int(labels["Nuclei"].max())
        for group in seconds:
            one = (
                FeatureSettings(groups=(), correlations=(group,))
                if group in CORRELATIONS
                else FeatureSettings(groups=(group,), correlations=())
            )
            t0 = time.perf_counter()
            measure_objects(labels, images, one)
            seconds[group] += time.perf_counter() - t0
    return {k: v / n for k, v in seconds.items()}, cells // n


def report_features(fields, n, settings, segment_s: float) -> None:
    from cellmoa.features.measure import FeatureSettings

    seconds, cells = features(fields, n, settings)
    print(f"features ({n} fields, ~{cells} cells each, 3 channels, nuclei and cells):")
    for group, s in seconds.items():
        print(f"  {group:20s} {s:6.2f} s/field")
    total = bbbc021_fields()
    demo = ("sizeshape", "intensity", "granularity", "radial_distribution", "pearson")
    for name, groups in (
        ("default", (*FeatureSettings().groups, *FeatureSettings().correlations)),
        ("demo's", demo),
    ):
        per_field = sum(seconds[g] for g in groups)
        print(
            f"{name} groups ({', '.join(groups)}): {per_field:.2f} s/field; with the "
            f"segmentation {per_field + segment_s:.2f} s/field, BBBC021 "
            f"{(per_field + segment_s) * total / 3600:.1f} CPU hours on one core"
        )


if __name__ == "__main__":
    main()
