"""The base install (`pip install cellmoa`, no extras) scores a profile table: `cellmoa
evaluate-profiles` runs in a Python that refuses to import TensorFlow, Keras and JAX, and in a
fresh virtual environment where `pip install .` put no training framework."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.paths import ROOT
from tests.profiles.test_evaluate_profiles import RENAMES, pycytominer_table

#: the [train] and [jax] extras' modules
REFUSED = ("tensorflow", "keras", "jax", "jaxlib")

SITECUSTOMIZE = f'''\
"""Refuse the training frameworks (tests/test_install.py): any import of them fails."""
import sys

REFUSED = {REFUSED!r}


class RefuseTrainingFrameworks:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in REFUSED:
            raise ModuleNotFoundError(
                f"{{name}} is refused: the base install has no training framework", name=name
            )
        return None


sys.meta_path.insert(0, RefuseTrainingFrameworks())
'''


def refusing_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a Python whose sitecustomize (first on PYTHONPATH) refuses REFUSED."""
    folder = tmp_path / "refuse"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(folder)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    env["PYTHONNOUSERSITE"] = "1"
    return env


def evaluate_profiles(python: str, tmp_path: Path, env: dict[str, str]) -> Path:
    """`python -m cellmoa.cli evaluate-profiles` on a table in pycytominer's layout; the output
    folder."""
    table = tmp_path / "profiles.csv.gz"
    pycytominer_table().to_csv(table, index=False)
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            python,
            "-m",
            "cellmoa.cli",
            "evaluate-profiles",
            str(table),
            "--control",
            "DMSO",
            "--batch-column",
            "Metadata_Batch_Name",
            *RENAMES,
            "--out",
            str(out),
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "24 treatments" in proc.stdout, proc.stdout
    assert "1-NN accuracy" in proc.stdout and "nscb" in proc.stdout, proc.stdout
    for name in ("profiles", "matches", "average_precision", "map_by_moa", "summary"):
        assert (out / f"{name}.tsv").is_file(), name
    return out


@pytest.mark.workflow
def test_evaluate_profiles_runs_with_the_training_frameworks_refused(tmp_path):
    env = refusing_env(tmp_path)
    # the refusal works (whether or not this venv has TensorFlow, as make install's has)
    for module in REFUSED:
        probe = subprocess.run(
            [sys.executable, "-c", f"import {module}"], env=env, capture_output=True, text=True
        )
        assert probe.returncode != 0 and "is refused" in probe.stderr, (module, probe.stderr)
    evaluate_profiles(sys.executable, tmp_path, env)


@pytest.mark.e2e
def test_a_fresh_base_install_runs_evaluate_profiles_without_tensorflow(tmp_path):
    """`pip install .` (no extras) into a new venv: about a minute and 1 GB, no TensorFlow."""
    source = tmp_path / "cellmoa"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).is_file():
            shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__")
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    absent = subprocess.run(
        [
            python,
            "-c",
            "import importlib.util as u; "
            f"print(' '.join(m for m in {REFUSED!r} if u.find_spec(m) is not None))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert absent.stdout.strip() == "", f"the base install has {absent.stdout.strip()}"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    evaluate_profiles(python, tmp_path, env)
