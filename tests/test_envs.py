"""envs/*.yaml (conda envs for --sdm conda) must parse and pin the versions pyproject.toml pins."""

import re

import tomllib
import yaml
from conftest import ROOT


def pins_of(requirements):
    pins = {}
    for req in requirements:
        m = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^;\s]+)", req.strip())
        assert m, f"unpinned requirement {req!r}"
        pins[m.group(1).lower()] = m.group(2)
    return pins


def test_env_files_parse_and_match_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = pins_of(project["dependencies"])
    envs = sorted((ROOT / "envs").glob("*.yaml"))
    assert envs
    seen = set()
    for path in envs:
        env = yaml.safe_load(path.read_text())
        assert "conda-forge" in env["channels"], path
        pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
        for name, version in pins_of(pip).items():
            assert name in pinned, f"{path.name}: {name} is not a dependency in pyproject.toml"
            assert version == pinned[name], f"{path.name}: {name}=={version}, pyproject.toml pins {pinned[name]}"
            seen.add(name)
    assert {"tensorflow-cpu", "keras", "h5py", "pandas", "numpy"} <= seen


def test_every_rule_uses_an_existing_env():
    for path in (ROOT / "workflow" / "rules").glob("*.smk"):
        blocks = re.split(r"^\s*rule (\w+):", path.read_text(), flags=re.M)
        for name, body in zip(blocks[1::2], blocks[2::2]):
            env = re.search(r'conda:\s*"\.\./\.\./envs/([\w-]+\.yaml)"', body)
            assert env, f"{path.name}: rule {name} has no conda: env"
            assert (ROOT / "envs" / env.group(1)).is_file(), f"rule {name}: envs/{env.group(1)} is missing"
