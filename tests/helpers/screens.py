"""A synthesized LoadData screen re-laid the way many microscopes export one."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from cellmoa.data.datasets.loaddata_images import channel_columns


def relay_per_well(screen: Path) -> None:
    """Move a screen's images to ``images/<plate>/<well>/s<site>_<channel><ext>``, in place.

    Every well's folder holds the same file names (``s1_DNA.tiff`` ...), and the LoadData CSV's
    ``PathName_`` columns name the per-well folders.
    """
    table = pd.read_csv(screen / "loaddata.csv", dtype=str, keep_default_na=False)
    names = channel_columns(table.columns, "FileName")
    folders = channel_columns(table.columns, "PathName")
    for index, row in table.iterrows():
        folder = f"images/{row['Metadata_Plate']}/{row['Metadata_Well']}"
        (screen / folder).mkdir(parents=True, exist_ok=True)
        for channel, column in names.items():
            old = screen / row[folders[channel]] / row[column]
            name = f"s{row['Metadata_Site']}_{channel}{old.suffix}"
            os.replace(old, screen / folder / name)
            table.loc[index, column] = name
            table.loc[index, folders[channel]] = folder
    table.to_csv(screen / "loaddata.csv", index=False)
