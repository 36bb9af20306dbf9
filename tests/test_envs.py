"""envs/*.yaml (conda envs for --sdm conda) must parse and pin the versions pyproject.toml pins."""

import re
from pathlib import Path

import tomllib
import yaml

from tests.helpers.paths import ROOT


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
    # the optional backends' pins too (envs/train.yaml carries JAX, so training.backend: jax works with --sdm conda)
    pinned.update(pins_of(project["optional-dependencies"]["jax"]))
    envs = sorted((ROOT / "envs").glob("*.yaml"))
    assert envs
    seen = set()
    for path in envs:
        env = yaml.safe_load(path.read_text())
        assert "conda-forge" in env["channels"], path
        pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
        for name, version in pins_of(pip).items():
            assert name in pinned, f"{path.name}: {name} is not a dependency in pyproject.toml"
            assert version == pinned[name], (
                f"{path.name}: {name}=={version}, pyproject.toml pins {pinned[name]}"
            )
            seen.add(name)
    assert {"tensorflow-cpu", "keras", "h5py", "pandas", "numpy"} <= seen


def test_every_rule_uses_an_existing_env():
    for path in (ROOT / "workflow" / "rules").glob("*.smk"):
        blocks = re.split(r"^\s*rule (\w+):", path.read_text(), flags=re.M)
        for name, body in zip(blocks[1::2], blocks[2::2]):
            env = re.search(r'conda:\s*"\.\./\.\./envs/([\w-]+\.yaml)"', body)
            assert env, f"{path.name}: rule {name} has no conda: env"
            assert (ROOT / "envs" / env.group(1)).is_file(), (
                f"rule {name}: envs/{env.group(1)} is missing"
            )


# pip distribution of each third-party module the rule scripts import
DISTRIBUTION = {
    "PIL": "pillow",
    "skimage": "scikit-image",
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
    "tensorflow": "tensorflow-cpu",
}
#: provided by the interpreter Snakemake runs the script with, or only under a backend not in the
#: envs (training.backend: torch needs PyTorch installed by the user: its PyPI wheel pulls GBs of CUDA)
NOT_CHECKED = {"snakemake", "torch"}


def _module_file(name: str):
    """The source file of a first-party module (cellmoa.*, rule_setup), or None."""
    if name == "rule_setup":
        return ROOT / "workflow" / "scripts" / "rule_setup.py"
    if name.split(".")[0] != "cellmoa":
        return None
    base = ROOT / "src" / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def import_closure(script):
    """Third-party top-level modules a script can import: its own imports and, recursively, those
    of every cellmoa module it reaches (function-level imports included: a lazy import still runs)."""
    import ast
    import sys

    seen, third_party, todo = set(), set(), [Path(script)]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        package = (
            ".".join(path.relative_to(ROOT / "src").with_suffix("").parts)
            if "src" in path.parts
            else ""
        )
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative import inside cellmoa
                    parent = (
                        package.rsplit(".", node.level - (path.name == "__init__.py"))[0]
                        if package
                        else ""
                    )
                    base = f"{parent}.{node.module}" if node.module else parent
                else:
                    base = node.module
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            for name in names:
                top = name.split(".")[0]
                file = _module_file(name)
                if file is not None:
                    todo.append(file)
                    # a package's __init__ runs on any import from it
                    for i in range(1, len(name.split("."))):
                        init = _module_file(".".join(name.split(".")[:i]))
                        if init is not None:
                            todo.append(init)
                elif (
                    top not in ("cellmoa", "rule_setup")
                    and top not in sys.stdlib_module_names
                    and top != "__future__"
                ):
                    third_party.add(top)
    return third_party


def test_every_rule_env_provides_what_its_script_imports():
    """Static check of --sdm conda (the conda channels cannot be reached here): each rule's env
    file lists every third-party package its script's import closure needs."""
    problems = []
    for path in (ROOT / "workflow" / "rules").glob("*.smk"):
        blocks = re.split(r"^\s*rule (\w+):", path.read_text(), flags=re.M)
        for name, body in zip(blocks[1::2], blocks[2::2]):
            script = re.search(r'script:\s*"\.\./scripts/([\w]+\.py)"', body)
            env = re.search(r'conda:\s*"\.\./\.\./envs/([\w-]+\.yaml)"', body)
            if not script:
                continue
            environment = yaml.safe_load((ROOT / "envs" / env.group(1)).read_text())
            pip = next(
                d["pip"] for d in environment["dependencies"] if isinstance(d, dict) and "pip" in d
            )
            provided = set(pins_of(pip))
            for module in sorted(
                import_closure(ROOT / "workflow" / "scripts" / script.group(1)) - NOT_CHECKED
            ):
                if DISTRIBUTION.get(module, module).lower() not in provided:
                    problems.append(
                        f"rule {name} ({script.group(1)}) imports {module}, which envs/{env.group(1)} lacks"
                    )
    assert not problems, "\n".join(problems)


def test_the_import_closure_sees_lazy_and_transitive_imports():
    closure = import_closure(ROOT / "workflow" / "scripts" / "summary.py")
    assert {
        "pandas",
        "copairs",
        "scipy",
        "matplotlib",
    } <= closure  # copairs only through a lazy import
