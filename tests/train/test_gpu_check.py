"""benchmarks/gpu_check.sh, the one-command GPU check, run as CI can: --cpu-smoke (tiny sizes on
the CPU), through the offline installation of Keras from a wheel folder as on the GPU machine."""

import json
import os
import subprocess
import sys

import pytest

from tests.helpers.paths import ROOT


@pytest.mark.e2e
def test_the_gpu_check_runs_every_stage_on_the_cpu(tmp_path):
    wheels = tmp_path / "wheels"
    # the wheels `make gpu-wheels` fetches, for this interpreter (the GPU machine's is 3.12)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    fetch = subprocess.run(
        ["make", "-s", "gpu-wheels", f"GPU_PYTHON={version}", f"GPU_WHEELS={wheels}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert fetch.returncode == 0, fetch.stdout[-2000:] + fetch.stderr[-2000:]
    assert sorted(p.name.split("-")[0] for p in wheels.glob("*.whl")) == [
        "keras",
        "namex",
        "optree",
        "typing_extensions",
    ]
    out = tmp_path / "out"
    env = dict(os.environ, OUT=str(out), WHEELS=str(wheels), PYTHON=sys.executable)
    proc = subprocess.run(
        [
            "bash",
            str(ROOT / "benchmarks/gpu_check.sh"),
            "--cpu-smoke",
            "--budget",
            "400",
            "--backends",
            "jax",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "installed" in proc.stdout and str(wheels) not in proc.stderr
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["mode"] == "cpu-smoke" and report["keras"] == "3.15.1"
    failed = [r for r in report["results"] if "error" in r]
    assert not failed and not report["skipped"], (failed, report["skipped"])
    models = [r for r in report["results"] if not r.get("kind")]
    assert {(r["precision"], r["jit"]) for r in models} == {("bfloat16", True), ("float32", False)}
    assert all(
        r["backend"] == "jax" and r["train_img_s"] > 0 and r["infer_img_s"] > 0 for r in models
    )
    concurrent = next(r for r in report["results"] if r.get("kind") == "concurrent")
    assert len(concurrent["per_job"]) == 2 and concurrent["train_img_s"] > 0
    pipeline = next(r for r in report["results"] if r.get("kind") == "pipeline")
    assert pipeline["crops_s"] > 0 and pipeline["stream_crops_s"] > 0 and pipeline["fill_s"] >= 0
    # the network trained fed by the memory mode (cache, gather, augmentation on the device)
    fed = next(r for r in report["results"] if r.get("kind") == "fed")
    assert fed["train_img_s"] > 0 and fed["backend"] == "jax"
    implied = report["implied"]
    assert (
        implied["hours"] > 0
        and implied["goal_images_per_s"] == 1650
        and implied["goal_met"] is False
    )
    table = (out / "gpu_check.md").read_text()
    assert "| jax | ResNet50 | 32 |" in table and "concurrent jobs" in table and "Full run" in table
    assert "fed by the memory mode" in table and "memory mode" in table


@pytest.mark.workflow
def test_the_gpu_check_refuses_a_python_without_keras_or_wheels(tmp_path):
    """On a machine with neither Keras nor the wheel folder, it says what to do (no traceback)."""
    fake = tmp_path / "python3"
    fake.write_text('#!/bin/sh\nif [ "$1" = "-c" ]; then exit 1; fi\necho "Python 3.12.0"\n')
    fake.chmod(0o755)
    env = dict(
        os.environ, OUT=str(tmp_path / "out"), WHEELS=str(tmp_path / "none"), PYTHON=str(fake)
    )
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks/gpu_check.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "make gpu-wheels" in proc.stderr, proc.stderr
