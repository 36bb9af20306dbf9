"""The SLURM profile against a real single-node SLURM on this machine (tools/slurm/start.sh):
the pipeline up to a fold's training runs as sbatch jobs, training jobs with a GPU request, the
predictions equal the local end-to-end run's, a single fold reruns alone, and a training job
cancelled with scancel resumes from its checkpoint."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cellmoa.train.folds import ALL_FOLD
from tests.helpers.paths import ROOT
from tests.helpers.smk import E2E_CONFIG, SNAKEMAKE, snakemake, write_config

STATE = Path(os.environ.get("CELLMOA_SLURM_STATE", "/tmp/cellmoa-slurm"))


def _slurm_up() -> bool:
    if not shutil.which("sinfo"):
        return False
    proc = subprocess.run(
        ["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=20
    )
    return proc.returncode == 0 and any(
        s.startswith(("idle", "mixed", "alloc")) for s in proc.stdout.split()
    )


@pytest.fixture(scope="session")
def slurm():
    """A running SLURM: the one already up, or one started here (and stopped at the end)."""
    if importlib_missing("snakemake_executor_plugin_slurm"):
        pytest.skip("snakemake-executor-plugin-slurm is not installed (pip install -e '.[dev]')")
    if not shutil.which("sbatch") or not _slurm_up():
        proc = subprocess.run(
            ["bash", str(ROOT / "tools/slurm/start.sh"), str(STATE)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode == 2:
            pytest.skip(f"SLURM cannot be installed here: {proc.stderr.strip()}")
        assert proc.returncode == 0, f"tools/slurm/start.sh failed:\n{proc.stdout}\n{proc.stderr}"
        yield "started"
        subprocess.run(
            ["bash", str(ROOT / "tools/slurm/stop.sh"), str(STATE)], capture_output=True, timeout=60
        )
    else:
        yield "running"


def importlib_missing(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is None


@pytest.mark.unit
def test_profile_names_both_gpu_styles():
    profile = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    assert profile["executor"] == "slurm"
    train = profile["set-resources"]["train"]
    assert train["gpu"] == 1 and "cpus_per_gpu" in train and "attempt" in str(train["mem_mb"])
    # every training rule gets the GPU request and its threads (a rule left out asked for 4 CPUs
    # on a 2-CPU test cluster and pended forever)
    assert profile["set-resources"]["train_all"] == train
    assert profile["set-threads"]["train_all"] == profile["set-threads"]["train"]
    text = (ROOT / "profiles/slurm/config.yaml").read_text()
    assert 'gres: "gpu:1"' in text and "slurm_account" in text and "slurm_partition" in text


def _test_profile(tmp_path) -> Path:
    """profiles/slurm adapted to the test cluster: its partition, no account, 2 CPUs, fast
    polling."""
    profile = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    profile["default-resources"] = {"slurm_partition": "main", "mem_mb": 1500, "runtime": 30}
    profile["set-threads"]["train"] = profile["set-threads"]["train_all"] = 2
    training = {
        **profile["set-resources"]["train"],
        "slurm_partition": "main",
        "cpus_per_gpu": 2,
        "mem_mb": 3000,
        "runtime": 30,
    }
    profile["set-resources"] = {
        "train": training,
        "train_all": dict(training),
        "illumination": {"mem_mb": 1500},
        "tensors": {"mem_mb": 1500},
    }
    profile.update(
        {
            "jobs": 2,
            "retries": 0,
            "latency-wait": 5,
            "slurm-status-command": "squeue",
            "slurm-no-account": True,
            "slurm-init-seconds-before-status-checks": 2,
            "slurm-keep-successful-logs": True,
        }
    )
    folder = tmp_path / "profile"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def _slurm_jobs(work: Path, rule: str = "train") -> list[str]:
    """The SLURM job ids of a rule's jobs (their logs: slurm-keep-successful-logs)."""
    logs = work / f".snakemake/slurm_logs/rule_{rule}"
    return sorted(p.stem for p in logs.rglob("*.log")) if logs.exists() else []


def _all_slurm_jobs(work: Path) -> set[str]:
    logs = work / ".snakemake/slurm_logs"
    return {p.stem for p in logs.rglob("*.log")} if logs.exists() else set()


def _scontrol(jobid: str) -> str:
    return subprocess.run(["scontrol", "show", "job", jobid], capture_output=True, text=True).stdout


#: the SLURM run: the pipeline up to one leave-one-compound-out fold and the all-compound fold
#: (rule train_all: the other training rule the profile must give a GPU); the local end-to-end
#: run (the e2e_run fixture, the same config) has made the same files
FOLD = "nocodazole"
SLURM_FOLDS = {FOLD: "train", ALL_FOLD: "train_all"}


@pytest.mark.e2e
def test_demo_pipeline_through_slurm(slurm, e2e_run, tmp_path):
    local, _, _ = e2e_run
    work = tmp_path / "slurm"
    work.mkdir()
    config = write_config(work / "config.yaml", E2E_CONFIG)
    profile = _test_profile(tmp_path)
    targets = [f"results/models/ResNet50/{fold}/predictions.tsv" for fold in SLURM_FOLDS]
    snakemake(
        *targets,
        f"--profile={profile}",
        "--directory",
        str(work),
        f"--configfile={config}",
        timeout=1500,
    )

    # the preprocessing jobs were sbatch jobs too; every training job was an sbatch job that
    # asked for a GPU and saw one
    for rule in ("illumination", "tensors"):
        assert _slurm_jobs(work, rule), f"no SLURM job of rule {rule}"
    jobs = {fold: _slurm_jobs(work, rule) for fold, rule in SLURM_FOLDS.items()}
    assert all(len(ids) == 1 for ids in jobs.values()), jobs
    for jobid in [ids[0] for ids in jobs.values()]:
        # the controller forgets a job MinJobAge after it ends (tools/slurm/start.sh keeps an hour;
        # a cluster already running may keep less): then the job's own log below is the evidence
        record = _scontrol(jobid)
        if record:
            assert re.search(r"(TresPerJob|TRES)=\S*gres/gpu[:=]1|gpu:1", record), record
    for fold in SLURM_FOLDS:  # the all-compound fold (rule train_all) too
        log = (work / f"logs/train/ResNet50/{fold}.log").read_text()
        assert "CUDA_VISIBLE_DEVICES=0" in log, "the job did not run inside a SLURM GPU allocation"
        allocation = re.search(r"SLURM allocation: (.*)", log)
        assert allocation, f"no SLURM allocation in the log of fold {fold}"
        assert re.search(r"SLURM_GPUS=1|SLURM_GPUS_ON_NODE=1|SLURM_JOB_GPUS=\d", allocation[1]), (
            allocation[1]
        )
        assert re.search(r"SLURM_JOB_ID=(\d+)", allocation[1])[1] in jobs[fold], (
            allocation[1],
            jobs,
        )

    # the same predictions as the local run of the same config
    for fold in SLURM_FOLDS:
        a = pd.read_csv(local / f"results/models/ResNet50/{fold}/predictions.tsv", sep="\t")
        b = pd.read_csv(work / f"results/models/ResNet50/{fold}/predictions.tsv", sep="\t")
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-6)

    # a single-fold rerun submits only that fold's training job
    before = _all_slurm_jobs(work)
    target = f"results/models/ResNet50/{FOLD}/predictions.tsv"
    snakemake(
        target,
        f"--profile={profile}",
        "--directory",
        str(work),
        f"--configfile={config}",
        f"--forcerun={target}",
        timeout=900,
    )
    new = sorted(set(_slurm_jobs(work)) - set(jobs[FOLD]))
    assert len(new) == 1, new
    assert _all_slurm_jobs(work) - before == set(new), sorted(_all_slurm_jobs(work) - before)
    assert FOLD in _scontrol(new[0]) or (work / ".snakemake/slurm_logs/rule_train").rglob(
        f"{new[0]}.log"
    )


@pytest.mark.e2e
def test_cancelled_training_job_resumes_from_its_checkpoint(slurm, e2e_run, tmp_path):
    local, _, _ = e2e_run
    work = tmp_path / "cancel"
    work.mkdir()
    # reuse the local run's prepared data, so only the training runs here
    shutil.copytree(local / "resources", work / "resources")
    shutil.copytree(local / "results/tensors", work / "results/tensors")
    config_dict = yaml.safe_load(yaml.safe_dump(E2E_CONFIG))
    config_dict["training"].update(epochs=6, input_size=48, batch_size=4)
    config = write_config(work / "config.yaml", config_dict)
    profile = _test_profile(tmp_path)
    target = "results/models/ResNet50/nocodazole/predictions.tsv"
    args = [
        *SNAKEMAKE,
        "--snakefile",
        str(ROOT / "Snakefile"),
        target,
        f"--profile={profile}",
        "--directory",
        str(work),
        f"--configfile={config}",
    ]
    history = work / "results/checkpoints/ResNet50/nocodazole/history.tsv"
    run = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 600
    cancelled = None
    while time.monotonic() < deadline and run.poll() is None:
        if history.exists() and len(history.read_text().splitlines()) >= 2:
            running = subprocess.run(
                ["squeue", "-h", "-t", "RUNNING", "-o", "%i"], capture_output=True, text=True
            ).stdout.split()
            if running:
                cancelled = running[0]
                subprocess.run(["scancel", cancelled], check=True)
                break
        time.sleep(0.1)
    out, _ = run.communicate(timeout=600)
    assert cancelled, "the training job finished before it could be cancelled:\n" + out[-3000:]
    assert run.returncode != 0, out[-3000:]
    assert (work / "results/checkpoints/ResNet50/nocodazole").exists()
    done = len(history.read_text().splitlines()) - 1 if history.exists() else 0

    snakemake(
        target,
        f"--profile={profile}",
        "--directory",
        str(work),
        f"--configfile={config}",
        timeout=900,
    )
    log = (work / "logs/train/ResNet50/nocodazole.log").read_text()
    assert "resuming from the checkpoint" in log
    epochs = list(
        pd.read_csv(work / "results/models/ResNet50/nocodazole/history.tsv", sep="\t")["epoch"]
    )
    assert epochs == list(range(6)), (done, epochs)
