"""Synthetic datasets in each registered dataset's exact layout, with real biological signal.

One module per dataset (:mod:`cellmoa.data.synthetic.bbbc021`,
:mod:`cellmoa.data.synthetic.bbbc014`), what they share in :mod:`cellmoa.data.synthetic.rendering`.
A dataset adapter names its synthesizer spec class (``Dataset.synthesizer``); :func:`spec_for`
finds it through the dataset registry.
"""

from __future__ import annotations

import importlib

from cellmoa.data.datasets import get_dataset


def spec_class(dataset: str) -> type:
    """The synthesizer spec class of a registered dataset."""
    adapter = get_dataset(dataset)
    module, _, name = adapter.synthesizer.partition(":")
    return getattr(importlib.import_module(module), name)


def spec_for(dataset: str, values: dict | None):
    """The synthetic dataset spec of a dataset, from the ``synthetic:`` config section.

    Parameters
    ----------
    dataset : str
        A registered dataset's name.
    values : dict or None
        The ``synthetic:`` config section (None for the spec's defaults).

    Returns
    -------
    object
        The spec; it has ``plates()`` and ``write(out_dir, archives=True)``.

    Raises
    ------
    ValueError
        If the dataset is not registered, or (from the spec) a setting is unknown.
    """
    return spec_class(dataset).from_dict(values)
