"""A workflow config's dataset adapter, with what the dataset decides filled in.

The data layer's part of the config's resolution (:func:`cellmoa.config.plan` does the rest): rule
scripts read their dataset from here (``resolve_dataset(snakemake.config)``), so that a job's
import path stays inside the data layer (a download job's conda env has no TensorFlow).
"""

from __future__ import annotations

import copy

from cellmoa.data.datasets import Dataset, get_dataset
from cellmoa.data.synthetic import spec_for

#: ``data:`` settings that describe your own screen: only ``dataset: loaddata`` reads them
SCREEN_KEYS = (
    "loaddata",
    "treatments",
    "moas",
    "control",
    "batch_column",
    "columns",
    "channels",
    "image_root",
    "plate_format",
    "unimaged_wells",
    "link_local",
)


def resolve_data(config: dict) -> dict:
    """A copy of the ``data:`` section with what the dataset decides filled in.

    Parameters
    ----------
    config : dict
        The validated workflow config.

    Returns
    -------
    dict
        ``data:`` with ``base_url`` (default: where the dataset is published) and, for a
        synthesized screen (``dataset: loaddata`` with ``synthetic:``), the tables and settings
        that read what the synthesizer writes into ``base_url``.

    Raises
    ------
    ValueError
        Screen settings for a published dataset; a synthetic screen without ``data.base_url``.
    """
    data = copy.deepcopy(config.get("data") or {})
    name = config["dataset"]
    adapter = get_dataset(name)
    screen_keys = sorted(set(data) & set(SCREEN_KEYS))
    if screen_keys and name != "loaddata":
        raise ValueError(
            f"config: data.{', data.'.join(screen_keys)} describe your own screen and apply to "
            f"dataset: loaddata only, not {name}; remove them or set dataset: loaddata"
        )
    if "synthetic" in config and not adapter.archives:
        if "base_url" not in data:
            raise ValueError(
                "config: a synthetic screen (dataset: loaddata) needs data.base_url, the folder "
                "to write it to"
            )
        defaults = spec_for(name, config["synthetic"]).data_defaults(data["base_url"])
        for key, value in defaults.items():
            data.setdefault(key, value)
    data.setdefault("base_url", adapter.base_url)
    return data


def resolve_dataset(config: dict) -> Dataset:
    """The config's dataset adapter, configured with its resolved ``data:`` section.

    What a rule script reads the dataset from (``resolve_dataset(snakemake.config)``); the same
    adapter as ``plan(config).dataset``.

    Parameters
    ----------
    config : dict
        The validated workflow config.

    Returns
    -------
    Dataset
        The adapter of ``dataset:``, configured with :func:`resolve_data`.
    """
    return get_dataset(config["dataset"], resolve_data(config))
