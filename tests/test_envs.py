"""Dependencies: pyproject.toml's ranges, the exact versions of requirements.lock (what `make
install` installs) and envs/*.yaml (conda envs for --sdm conda) agree: the ranges admit the locked
versions, the envs pin the locked versions, the lock covers every extra `make install` installs,
the base install has no training framework, and each rule's env provides what its script imports."""

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.helpers.paths import ROOT

pytestmark = pytest.mark.unit

LOCK = ROOT / "requirements.lock"
#: the training frameworks: only in the [train] and [jax] extras, never in the base install
TRAINING = {"tensorflow", "tensorflow-cpu", "keras", "jax", "jaxlib", "torch"}


def pins_of(requirements):
    pins = {}
    for req in requirements:
        m = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^;\s]+)", req.strip())
        assert m, f"unpinned requirement {req!r}"
        pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def locked():
    """requirements.lock as {name: {version: environment marker or ''}} (a package can be locked
    at two versions under exclusive markers, e.g. by Python version)."""
    out = {}
    for line in LOCK.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)\s*(?:;\s*([^\\]*?))?\s*\\?$", line)
        if m:
            marker = (m.group(3) or "").strip()
            out.setdefault(canonicalize_name(m.group(1)), {})[m.group(2)] = marker
    return out


def project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def requirements():
    """(group, Requirement) of every dependency: group "base" or the extra's name."""
    p = project()
    out = [("base", Requirement(r)) for r in p["dependencies"]]
    for extra, reqs in p["optional-dependencies"].items():
        out += [(extra, Requirement(r)) for r in reqs]
    return out


def lock_recipe():
    """The `make lock` recipe (the uv pip compile command that wrote requirements.lock)."""
    makefile = (ROOT / "Makefile").read_text()
    m = re.search(r"^lock:\n((?:\t.*\n)+)", makefile, flags=re.M)
    assert m, "the Makefile has no lock: target"
    return m.group(1)


def env_pins(path):
    env = yaml.safe_load(path.read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return env, pins_of(pip)


def test_the_lock_is_exact_and_hashed():
    lock = locked()
    assert len(lock) > 50, "requirements.lock lists too few packages"
    text = LOCK.read_text()
    # every entry is an exact pin followed by its hashes (make install uses pip --require-hashes)
    entries = re.split(r"^(?=[A-Za-z0-9])", text, flags=re.M)[1:]
    for entry in entries:
        head = entry.splitlines()[0]
        assert "==" in head and "--hash=sha256:" in entry, f"requirements.lock: {head!r}"
    # two versions of one package only under markers that tell them apart
    for name, versions in lock.items():
        if len(versions) > 1:
            assert all(versions.values()) and len(set(versions.values())) == len(versions), name


def test_pyproject_gives_ranges_that_admit_the_locked_versions():
    lock = locked()
    for group, req in requirements():
        name = canonicalize_name(req.name)
        assert req.specifier, f"pyproject.toml [{group}]: {req} has no version range"
        assert not any(s.operator in ("==", "===") for s in req.specifier), (
            f"pyproject.toml [{group}]: {req} is pinned; pins belong in requirements.lock"
        )
        assert any(s.operator in (">=", ">", "~=") for s in req.specifier), (
            f"pyproject.toml [{group}]: {req} has no lower bound"
        )
        assert name in lock, f"requirements.lock lacks {name} ([{group}] of pyproject.toml)"
        for version in lock[name]:
            assert req.specifier.contains(Version(version), prereleases=True), (
                f"requirements.lock has {name}=={version}, outside pyproject.toml's {req}"
            )


def test_the_lock_covers_every_extra_and_the_base_has_no_training_framework():
    recipe = lock_recipe()
    extras = set(project()["optional-dependencies"])
    assert {"train", "jax", "dev", "docs"} <= extras
    for extra in extras:
        assert f"--extra {extra}" in recipe, f"make lock does not lock the [{extra}] extra"
    assert "--generate-hashes" in recipe
    # make install installs the lock (hash-checked), then cellmoa without re-resolving
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r $(LOCK)" in makefile and "--no-deps -e ." in makefile
    base = {canonicalize_name(r.name) for g, r in requirements() if g == "base"}
    assert not base & TRAINING, f"the base install pulls in {sorted(base & TRAINING)}"
    train = {canonicalize_name(r.name) for g, r in requirements() if g == "train"}
    assert {"tensorflow-cpu", "keras"} <= train


def test_env_files_parse_and_pin_the_locked_versions():
    lock = locked()
    python = re.search(r"--python-version (\d+\.\d+)", lock_recipe())
    assert python, "make lock names no --python-version"
    envs = sorted((ROOT / "envs").glob("*.yaml"))
    assert envs
    seen = set()
    for path in envs:
        env, pins = env_pins(path)
        assert "conda-forge" in env["channels"], path
        # the conda env's Python is the one the lock was resolved for
        assert f"python={python.group(1)}" in env["dependencies"], (
            f"{path.name}: not python={python.group(1)}, the Python of make lock"
        )
        for name, version in pins.items():
            assert name in lock, f"{path.name}: {name} is not in requirements.lock"
            assert version in lock[name], (
                f"{path.name}: {name}=={version}, requirements.lock has {sorted(lock[name])}"
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
    "cp_measure": "cp-measure",
    "skimage": "scikit-image",
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
    "tensorflow": "tensorflow-cpu",
}
#: provided by the interpreter Snakemake runs the script with, or only under a backend not in the
#: envs (training.backend: torch needs PyTorch installed by the user: its PyPI wheel pulls GBs of
#: CUDA)
NOT_CHECKED = {"snakemake", "torch"}


def _module_file(name: str):
    """The source file of a first-party module (cellmoa.*, rule_setup), or None."""
    script = ROOT / "workflow" / "scripts" / f"{name}.py"
    if "." not in name and script.is_file():  # rule_setup and the scripts' shared helpers
        return script
    if name.split(".")[0] != "cellmoa":
        return None
    base = ROOT / "src" / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def import_closure(script):
    """Third-party top-level modules a script can import: its own imports and, recursively, those
    of every cellmoa module it reaches (function-level imports included: a lazy import still
    runs)."""
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
                    top not in ("cellmoa", "rule_setup", "plate_setup")
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
                if canonicalize_name(DISTRIBUTION.get(module, module)) not in provided:
                    problems.append(
                        f"rule {name} ({script.group(1)}) imports {module}, "
                        f"which envs/{env.group(1)} lacks"
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


def test_the_cellmoa_command_needs_only_the_base_install():
    """`pip install cellmoa` (no extras) runs every `cellmoa` subcommand, evaluate-profiles among
    them: whatever cellmoa.cli can import, lazily or not, is a base dependency
    (tests/test_install.py runs it with TensorFlow, Keras and JAX refused)."""
    base = {canonicalize_name(r.name) for g, r in requirements() if g == "base"}
    needed = {
        module: canonicalize_name(DISTRIBUTION.get(module, module))
        for module in import_closure(ROOT / "src" / "cellmoa" / "cli.py")
    }
    assert {"copairs", "pandas"} <= set(needed.values())
    missing = sorted(f"{m} ({d})" for m, d in needed.items() if d not in base)
    assert not missing, f"cellmoa.cli reaches modules outside the base install: {missing}"
