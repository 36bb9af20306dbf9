"""The examples in cellmoa's docstrings (numpydoc ``Examples``) run and give what they show."""

import doctest
import importlib
import pkgutil

import pytest

import cellmoa

MODULES = sorted(m.name for m in pkgutil.walk_packages(cellmoa.__path__, "cellmoa."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS, verbose=False
    )
    assert result.failed == 0, (
        f"{name}: {result.failed} of {result.attempted} docstring examples failed (python -m doctest -v)"
    )


def test_the_profiling_maths_has_examples():
    """pycytominer's style: the fit/transform objects and the scoring helpers show a short example."""
    attempted = {
        name: doctest.testmod(importlib.import_module(name), verbose=False).attempted
        for name in (
            "cellmoa.profiles.postprocessing",
            "cellmoa.evaluate.unannotated",
            "cellmoa.evaluate.accuracy",
        )
    }
    assert all(attempted.values()), attempted
