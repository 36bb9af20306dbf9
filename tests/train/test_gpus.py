"""GPU claiming on a multi-GPU workstation (the lock logic; no GPU needed)."""

import subprocess
import sys

import pytest

from cellmoa.train.gpus import claim_device, use_one_gpu


@pytest.mark.unit
def test_jobs_spread_over_the_gpus_before_sharing_one(tmp_path):
    claims = [claim_device(3, tmp_path) for _ in range(7)]
    assert [index for index, _ in claims] == [0, 1, 2, 0, 1, 2, 0]
    claims[1][1].close()  # the job on GPU 1 ends: the next job takes its place
    index, _ = claim_device(3, tmp_path)
    assert index == 1
    with pytest.raises(ValueError):
        claim_device(0, tmp_path)


@pytest.mark.workflow
def test_a_killed_job_frees_its_gpu(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from cellmoa.train.gpus import claim_device; "
            f"i, h = claim_device(2, {str(tmp_path)!r}); print(i, flush=True); time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "0"
        index, other = claim_device(2, tmp_path)
        assert index == 1, "GPU 0 is held by the other process"
    finally:
        holder.kill()
        holder.wait()
    assert claim_device(2, tmp_path)[0] == 0, "SIGKILL released the lock on GPU 0"
    other.close()


class FakeDevice:
    def __init__(self, name):
        self.name = name

    def __eq__(self, other):
        return getattr(other, "name", other) == self.name


class FakeConfig:
    def __init__(self, n):
        self.gpus = [FakeDevice(f"/physical_device:GPU:{i}") for i in range(n)]
        self.visible = None

    def list_physical_devices(self, kind):
        return list(self.gpus)

    def set_visible_devices(self, devices, kind):
        self.visible = devices


class FakeTF:
    def __init__(self, n):
        self.config = FakeConfig(n)


@pytest.mark.unit
def test_use_one_gpu_hides_the_others_only_when_there_are_several(tmp_path, monkeypatch):
    monkeypatch.setenv("CELLMOA_GPU_LOCK_DIR", str(tmp_path))
    one = FakeTF(1)
    assert use_one_gpu(one) == ["/physical_device:GPU:0"] and one.config.visible is None
    none = FakeTF(0)
    assert use_one_gpu(none) == [] and none.config.visible is None
    first, second = FakeTF(2), FakeTF(2)
    assert use_one_gpu(first) == ["/physical_device:GPU:0"] and first.config.visible == [
        "/physical_device:GPU:0"
    ]
    assert use_one_gpu(second) == ["/physical_device:GPU:1"] and second.config.visible == [
        "/physical_device:GPU:1"
    ]


@pytest.mark.unit
def test_slurm_allocation_line_names_the_job_and_its_gpus():
    from cellmoa.train.gpus import slurm_allocation

    assert slurm_allocation({"PATH": "/bin"}) is None
    env = {
        "SLURM_JOB_ID": "42",
        "SLURM_JOB_GPUS": "0",
        "SLURM_GPUS": "1",
        "SLURM_JOB_PARTITION": "gpu",
        "HOME": "/root",
    }
    line = slurm_allocation(env)
    assert line == "SLURM_JOB_ID=42 SLURM_JOB_PARTITION=gpu SLURM_JOB_GPUS=0 SLURM_GPUS=1"
