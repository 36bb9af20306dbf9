"""Shared fixtures: small synthetic datasets in BBBC021's layout, and the real metadata if present.

And the test tiers (pyproject's markers): every test is exactly one of ``unit`` (in-process),
``workflow`` (Snakemake dry runs and small runs, other subprocesses) and ``e2e`` (training
networks, SLURM, whole pipelines); the docstring examples are unit tests. A test without a tier,
or with two, stops the collection with its name.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _pytest.doctest import DoctestItem, DoctestModule

from cellmoa.data.datasets import BBBC021
from cellmoa.data.synthetic.bbbc021 import SyntheticSpec, synthesize
from cellmoa.preprocess.jobs import build_tensors
from tests.helpers.paths import SHARED_BBBC021
from tests.helpers.smk import E2E_CONFIG, snakemake, write_config
from tests.helpers.specs import tiny_spec

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TIERS = ("unit", "workflow", "e2e")


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path, parent):
    """--doctest-modules is for src/cellmoa: a test module here is collected once, as tests."""
    collected = yield
    return [c for c in collected or [] if not isinstance(c, DoctestModule)]


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: untiered tests are refused in any run
def pytest_collection_modifyitems(config, items):
    wrong = []
    for item in items:
        if isinstance(item, DoctestItem):
            item.add_marker(pytest.mark.unit)
        tiers = sorted({m.name for m in item.iter_markers() if m.name in TIERS})
        if len(tiers) != 1:
            wrong.append(f"  {item.nodeid}: {', '.join(tiers) or 'no tier'}")
    if wrong:
        raise pytest.UsageError(
            "every test needs exactly one tier mark (pytest.mark.unit, .workflow or .e2e: a "
            "module's `pytestmark = pytest.mark.unit`, or one per test where a module mixes "
            "tiers):\n" + "\n".join(wrong)
        )


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
            f"the real BBBC021 metadata is not at {SHARED_BBBC021} "
            "(it is provided beside the repo in CI)"
        )
    return SHARED_BBBC021


@pytest.fixture(scope="session")
def tiny_tensors(tiny_raw, tmp_path_factory) -> Path:
    """Assembled HDF5 tensors of the tiny dataset (illumination-corrected, DMSO z-scored)."""
    spec, raw = tiny_raw
    return build_tensors(BBBC021(), raw, tmp_path_factory.mktemp("tensors"), spec.plates())


@pytest.fixture(scope="session")
def e2e_run(tmp_path_factory):
    """The tiny end-to-end config (tests.helpers.smk.E2E_CONFIG) run locally with Snakemake
    (--cores 2): (workdir, config, process). One finished workdir for the whole session: the
    end-to-end tests read it, rerun parts of it, or copy it (never a second run of the same config).
    """
    work = tmp_path_factory.mktemp("e2e")
    config = write_config(work / "config.yaml", E2E_CONFIG)
    proc = snakemake("--cores", "2", "--directory", str(work), f"--configfile={config}")
    return work, config, proc


@pytest.fixture(scope="session")
def tiny_tensors_unannotated(tiny_raw, tmp_path_factory) -> Path:
    """The tiny tensors with the unannotated compound's crops kept (prediction.unannotated)."""
    spec, raw = tiny_raw
    return build_tensors(
        BBBC021(),
        raw,
        tmp_path_factory.mktemp("tensors_unannotated"),
        spec.plates(),
        unannotated=True,
    )
