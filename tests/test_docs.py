"""The documentation agrees with the code: the configuration page with the schema, the nav with the
pages, the README with its length limit. (`make docs` builds the site itself, in strict mode.)"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
STAGES = ("data", "preprocess", "segment", "train", "features", "profiles", "evaluate", "report")


def _generator():
    """tools/config_reference.py, loaded from its path (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "config_reference", ROOT / "tools" / "config_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _nav_pages(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [page for item in node for page in _nav_pages(item)]
    if isinstance(node, dict):
        return [page for value in node.values() for page in _nav_pages(value)]
    return []


@pytest.fixture(scope="module")
def mkdocs_config() -> dict:
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))


def test_configuration_page_is_generated_from_the_schema():
    generator = _generator()
    expected = generator.render(generator.load_schema(ROOT / "workflow/schemas/config.schema.yaml"))
    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert page == expected, (
        "docs/configuration.md differs from workflow/schemas/config.schema.yaml: "
        "run `make config-docs` (tools/config_reference.py) and commit the page"
    )


def _schema_keys(node: dict, prefix: str = "") -> list[str]:
    keys = []
    for name, child in node.get("properties", {}).items():
        key = f"{prefix}{name}"
        keys.append(key)
        keys += _schema_keys(child, key + ".")
        items = child.get("items")
        if isinstance(items, dict):
            keys += _schema_keys(items, key + "[].")
    return keys


def test_configuration_page_names_every_schema_key():
    generator = _generator()
    schema = generator.load_schema(ROOT / "workflow/schemas/config.schema.yaml")
    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`([A-Za-z0-9_.\[\]]+)`", page))
    missing = [key for key in _schema_keys(schema) if key not in named]
    assert not missing, f"keys of the schema not on docs/configuration.md: {missing}"
    # the keys the README's old hand-written table lacked
    assert {"training.input_size", "training.imagenet_weights_url"} <= named


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) < 200, f"README.md has {len(lines)} lines; move detail into docs/ (limit 200)"


def test_readme_keeps_its_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(r"^make demo\s+# ", readme, re.M)
    assert re.search(r"^make test\s+# ", readme, re.M)
    assert "make docs" in readme and "site/index.html" in readme


def test_every_page_is_in_the_nav(mkdocs_config):
    nav = _nav_pages(mkdocs_config["nav"])
    pages = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(set(pages) - set(nav)) == [], "pages in docs/ missing from mkdocs.yml's nav"
    assert sorted(set(nav) - set(pages)) == [], "nav entries of mkdocs.yml without a page"
    assert len(nav) == len(set(nav)), "a page is in the nav twice"


def test_api_pages_document_every_stage_package(mkdocs_config):
    text = "\n".join(p.read_text(encoding="utf-8") for p in (DOCS / "api").glob("*.md"))
    blocks = set(re.findall(r"^::: (cellmoa[\w.]*)$", text, re.M))
    expected = {f"cellmoa.{stage}" for stage in STAGES}
    expected |= {
        f"cellmoa.{name}" for name in ("columns", "files", "validation", "intervals", "logs")
    }
    assert expected <= blocks, f"API pages lack {sorted(expected - blocks)}"
    for stage in STAGES:
        assert (ROOT / "src" / "cellmoa" / stage / "__init__.py").exists(), stage
    handler = mkdocs_config["plugins"][1]["mkdocstrings"]["handlers"]["python"]
    assert handler["paths"] == ["src"]
    assert handler["options"]["show_submodules"] is True


def test_docs_links_point_at_pages_that_exist():
    for page in DOCS.rglob("*.md"):
        for target in re.findall(
            r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")
        ):
            assert (page.parent / target).resolve().exists(), (
                f"{page.relative_to(ROOT)} links {target}"
            )
