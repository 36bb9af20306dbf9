"""Shared fixtures: small synthetic datasets in BBBC021's layout, and the real metadata if present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cellmoa.data.synthetic.bbbc021 import SyntheticSpec, synthesize
from tests.helpers.paths import SHARED_BBBC021
from tests.helpers.specs import tiny_spec

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> tuple[SyntheticSpec, Path]:
    """A 4-plate synthetic dataset as archives + CSVs (what a download serves)."""
    spec = tiny_spec()
    out = synthesize(spec, tmp_path_factory.mktemp("tiny") / "source")
    return spec, out


@pytest.fixture(scope="session")
def tiny_raw(tmp_path_factory) -> tuple[SyntheticSpec, Path]:
    """The same kind of dataset extracted into plate folders (what the download rules produce)."""
    spec = tiny_spec()
    out = synthesize(spec, tmp_path_factory.mktemp("tiny_raw") / "raw", archives=False)
    return spec, out


@pytest.fixture(scope="session")
def real_metadata_dir() -> Path:
    if not (SHARED_BBBC021 / "BBBC021_v1_image.csv").exists():
        pytest.skip(
            f"the real BBBC021 metadata is not at {SHARED_BBBC021} (it is provided beside the repo in CI)"
        )
    return SHARED_BBBC021


@pytest.fixture(scope="session")
def tiny_tensors(tiny_raw, tmp_path_factory) -> Path:
    """Assembled HDF5 tensors of the tiny dataset (illumination-corrected, DMSO z-scored)."""
    from cellmoa.data.datasets import BBBC021
    from cellmoa.preprocess.jobs import build_tensors

    spec, raw = tiny_raw
    return build_tensors(BBBC021(), raw, tmp_path_factory.mktemp("tensors"), spec.plates())


@pytest.fixture(scope="session")
def e2e_run(tmp_path_factory):
    """The tiny end-to-end config run locally with Snakemake (--cores 2): (workdir, config, process)."""
    from tests.helpers.smk import E2E_CONFIG, snakemake, write_config

    work = tmp_path_factory.mktemp("e2e")
    config = write_config(work / "config.yaml", E2E_CONFIG)
    proc = snakemake("--cores", "2", "--directory", str(work), f"--configfile={config}")
    return work, config, proc


@pytest.fixture(scope="session")
def tiny_tensors_unannotated(tiny_raw, tmp_path_factory) -> Path:
    """The tiny tensors with the unannotated compound's crops kept (prediction.unannotated)."""
    from cellmoa.data.datasets import BBBC021
    from cellmoa.preprocess.jobs import build_tensors

    spec, raw = tiny_raw
    return build_tensors(
        BBBC021(),
        raw,
        tmp_path_factory.mktemp("tensors_unannotated"),
        spec.plates(),
        unannotated=True,
    )
