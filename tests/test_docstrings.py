"""The examples in cellmoa's docstrings (numpydoc ``Examples``) run under ``--doctest-modules``
(pyproject's pytest addopts, over ``src/cellmoa``); here: the profiling maths shows them."""

import doctest
import importlib

import pytest

pytestmark = pytest.mark.unit

#: pycytominer's style: the fit/transform objects and the scoring helpers show a short example
PROFILING_MATHS = (
    "cellmoa.profiles.postprocessing",
    "cellmoa.evaluate.neighbours",
    "cellmoa.evaluate.profile_calls",
    "cellmoa.evaluate.accuracy",
    "cellmoa.profiles.export",
)


def test_the_profiling_maths_has_examples():
    finder = doctest.DocTestFinder()
    examples = {
        name: sum(len(t.examples) for t in finder.find(importlib.import_module(name)))
        for name in PROFILING_MATHS
    }
    assert all(examples.values()), examples
