"""Dataset adapters behind one interface (:class:`~cellmoa.datasets.base.Dataset`)."""

from cellmoa.datasets.base import FOLD_COLUMNS, Dataset, fold_slug, fold_slugs, restrict
from cellmoa.datasets.bbbc014 import BBBC014
from cellmoa.datasets.bbbc021 import BBBC021

DATASETS = {"bbbc021": BBBC021, "bbbc014": BBBC014}


def get_dataset(name: str) -> Dataset:
    """Return the adapter for a dataset name from the config (``dataset:``)."""
    try:
        return DATASETS[name.lower()]()
    except KeyError:
        raise ValueError(
            f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}"
        ) from None


__all__ = ["BBBC014", "BBBC021", "DATASETS", "FOLD_COLUMNS", "Dataset", "fold_slug", "fold_slugs", "get_dataset", "restrict"]
