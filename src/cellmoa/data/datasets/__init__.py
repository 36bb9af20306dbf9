"""Dataset adapters behind one interface, registered here.

The interface is :class:`~cellmoa.data.datasets.base.Dataset`.
:data:`DATASETS` is the one list of datasets: ``dataset:`` in the config (its schema enum is
checked against it by the tests), ``cellmoa synthesize --dataset``, the synthesizers
(:func:`cellmoa.data.synthetic.spec_for`), the reports and the demo configs all derive from it.

To add a dataset: write its adapter (a :class:`Dataset` subclass) in a module of this package,
add it to :data:`DATASETS`, add its name to ``dataset``'s enum in
``workflow/schemas/config.schema.yaml``, and give it a synthesizer under ``cellmoa.data.synthetic``
and a demo config (``synthesizer`` and ``demo_config`` attributes).
"""

from cellmoa.data.datasets.base import METADATA_COLUMNS, Dataset
from cellmoa.data.datasets.bbbc014 import BBBC014
from cellmoa.data.datasets.bbbc021 import BBBC021
from cellmoa.data.datasets.loaddata import LoadData

#: name (as in the config's ``dataset:``) -> adapter class
DATASETS: dict[str, type[Dataset]] = {cls.name: cls for cls in (BBBC021, BBBC014, LoadData)}


def get_dataset(name: str, data: dict | None = None) -> Dataset:
    """Return the adapter for a dataset name from the config (``dataset:``).

    Parameters
    ----------
    name : str
        The dataset's name, in any case (a key of :data:`DATASETS`).
    data : dict, optional
        The config's ``data:`` section, which only a configured adapter such as ``loaddata``
        reads; without it the adapter is returned unconfigured.

    Returns
    -------
    Dataset
        The adapter, configured with ``data`` when given.

    Raises
    ------
    ValueError
        If ``name`` is not a registered dataset.
    """
    try:
        cls = DATASETS[name.lower()]
    except KeyError:
        raise ValueError(
            f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}"
        ) from None
    adapter = cls()
    return adapter if data is None else adapter.configure(data)


__all__ = [
    "BBBC014",
    "BBBC021",
    "DATASETS",
    "METADATA_COLUMNS",
    "Dataset",
    "LoadData",
    "get_dataset",
]
