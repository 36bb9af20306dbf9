"""Helpers for tests that run Snakemake: the command, dry-run parsing, the tiny end-to-end
config."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.helpers.paths import ROOT

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(*args, cwd=ROOT, check=True, timeout=1200):
    """Run Snakemake on this repository's Snakefile; raise with its output if it fails and
    ``check``."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [*SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n"
            f"{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


def planned_jobs(output: str) -> list[dict]:
    """Jobs of a dry run: rule name plus the resources/wildcards lines."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", output):
        m = re.match(r"(?:local)?rule (\w+):", block)
        if not m:
            continue
        job = {"rule": m.group(1)}
        for key in ("resources", "wildcards"):
            line = re.search(rf"^\s+{key}: (.*)$", block, re.M)
            job[key] = dict(kv.split("=", 1) for kv in line.group(1).split(", ")) if line else {}
        jobs.append(job)
    return jobs


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


#: One network (ResNet50 at 32 px, one epoch), four leave-one-compound-out folds, 4 tiny plates.
E2E_CONFIG = {
    "dataset": "bbbc021",
    "data": {"base_url": "resources/synthetic/e2e"},
    "synthetic": {
        "seed": 11,
        "moas": {
            "Microtubule destabilizers": ["nocodazole", "vincristine"],
            "Actin disruptors": ["cytochalasin B", "latrunculin B"],
        },
        "concentrations": [0.3, 3.0],
        "weeks": 2,
        "plates_per_week": 2,
        "sites_per_well": 1,
        "image_height": 96,
        "image_width": 128,
        "nucleus_radius": 3.0,
        "cells_per_field": 30,
    },
    "training": {
        "networks": ["ResNet50"],
        "folds": {
            "scheme": "nsc",
            "compounds": ["nocodazole", "vincristine", "cytochalasin B", "latrunculin B"],
        },
        "weights": "none",
        "input_size": 32,
        "epochs": 1,
        "batch_size": 8,
        "optimizer": "adam",
        "learning_rate": 0.001,
    },
    # four calibration compounds: sets smaller than every MoA up to 4/5 coverage
    "prediction": {"coverage": 0.75},
    # the CellProfiler baseline beside the network: nuclei ~6 px across at this size, the two
    # cheapest feature groups
    "profiles": {"baseline": "cellprofiler"},
    "segmentation": {"nucleus_diameter": 6},
    "features": {"groups": ["sizeshape", "intensity"], "correlations": []},
}
E2E_FOLDS = {
    "nocodazole": "nocodazole",
    "vincristine": "vincristine",
    "cytochalasin-b": "cytochalasin B",
    "latrunculin-b": "latrunculin B",
}
