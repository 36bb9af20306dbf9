"""Where a LoadData screen's images lie: its ``FileName_``/``PathName_`` columns, read and checked.

Part of the ``loaddata`` adapter (:mod:`cellmoa.data.datasets.loaddata`): each field's image per
channel is found from the LoadData table's ``FileName_<Channel>`` and ``PathName_<Channel>``
columns (a local path, ``file://`` or ``http(s)://``; relative folders resolved against
``data.image_root``) and stored as ``<plate>/<path below the plate's folder>``
(:func:`stored_names`: a plate whose images share one folder keeps the bare file names;
per-well folders such as ``<plate>/<well>/s1_DNA.tif`` keep ``<well>/s1_DNA.tif``). No image may
be listed twice, and two different sources may not land on one stored path.
"""

from __future__ import annotations

import posixpath
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

from cellmoa.data.datasets.loaddata_tables import ScreenError, line_of


def channel_columns(columns, kind: str = "FileName") -> dict[str, str]:
    """Channel name -> column for the ``FileName_`` (or ``PathName_``) columns, in table order.

    Parameters
    ----------
    columns : iterable of str
        A LoadData table's columns.
    kind : {"FileName", "PathName"}
        Which columns.

    Returns
    -------
    dict

    Raises
    ------
    ScreenError
        Two columns name the same channel.

    Examples
    --------
    >>> channel_columns(["FileName_DNA", "Image_FileName_OrigER", "PathName_DNA"])
    {'DNA': 'FileName_DNA', 'ER': 'Image_FileName_OrigER'}
    """
    out: dict[str, str] = {}
    for column in columns:
        name = column[len("Image_") :] if column.startswith("Image_") else column
        if not name.startswith(f"{kind}_"):
            continue
        channel = name[len(kind) + 1 :]
        if channel.startswith("Orig") and len(channel) > 4:
            channel = channel[4:]
        if channel in out:
            raise ScreenError(
                f"columns {out[channel]} and {column} both name channel {channel}; keep one"
            )
        out[channel] = column
    return out


def join_location(root: str, folder: str, name: str) -> str:
    """Where an image lies: ``folder/name``, the folder resolved against ``root`` where relative.

    Examples
    --------
    >>> join_location("https://x.org/screen", "images/P1", "a b.tif")
    'https://x.org/screen/images/P1/a%20b.tif'
    """
    if "://" in name or Path(name).is_absolute():
        return name
    if folder:
        if "://" in folder:
            return folder.rstrip("/") + "/" + urllib.parse.quote(name)
        if Path(folder).is_absolute():
            return str(Path(folder) / name)
    relative = posixpath.join(folder, name) if folder else name
    if "://" in root:
        return root.rstrip("/") + "/" + urllib.parse.quote(relative)
    return str(Path(root) / relative)


def location_root(source: str) -> str:
    """The folder (or URL folder) holding a table: relative image folders start there.

    Examples
    --------
    >>> location_root("https://x.org/screen/loaddata.csv")
    'https://x.org/screen'
    """
    if "://" in source:
        parsed = urllib.parse.urlparse(source)
        if parsed.scheme == "file":
            return str(Path(urllib.request.url2pathname(parsed.path)).parent)
        return source.rsplit("/", 1)[0]
    return str(Path(source).resolve().parent)


def add_image_sources(
    images: pd.DataFrame,
    fields: pd.DataFrame,
    src: str,
    channels: tuple[str, ...],
    image_root: str,
) -> None:
    """Add ``source_<channel>`` and ``file_<channel>`` of every field, in place.

    Parameters
    ----------
    images : pandas.DataFrame
        The LoadData table (text).
    fields : pandas.DataFrame
        Its fields (``plate``, ``well``, ``site``), row by row.
    src : str
        The table's name, for errors.
    channels : tuple of str
        The channels to store.
    image_root : str
        The folder (or URL) relative ``PathName_`` folders are resolved against.

    Raises
    ------
    ScreenError
        A channel has no ``FileName_`` column or a field no file, two images share a stored
        name, or one image is listed twice.
    """
    names = channel_columns(images.columns, "FileName")
    folders = channel_columns(images.columns, "PathName")
    absent = [c for c in channels if c not in names]
    if absent:
        raise ScreenError(
            f"{src}: no FileName_ column for channel(s) {', '.join(absent)} (data.channels); "
            f"its channels are {', '.join(names) or 'none'}. Fix data.channels or the CSV's "
            "columns"
        )
    for channel in channels:
        files = images[names[channel]].astype(str).str.strip()
        empty = (files == "") | (files.str.lower() == "nan")
        if empty.any():
            index = int(np.flatnonzero(empty.values)[0])
            row = fields.iloc[index]
            raise ScreenError(
                f"{src} line {line_of(images.index[index])}: plate {row['plate']} well "
                f"{row['well']} site {row['site']} has no {channel} image ({names[channel]} "
                f"is empty; {int(empty.sum())} row(s) in all). Fix: fill it in, or remove "
                "the field's row"
            )
        paths = (
            images[folders[channel]].astype(str).str.strip()
            if channel in folders
            else pd.Series([""] * len(images), index=images.index)
        )
        fields[f"source_{channel}"] = [
            join_location(image_root, f, n) for f, n in zip(paths, files)
        ]
    plates = fields["plate"].tolist() * len(channels)
    names = stored_names(plates, [s for c in channels for s in fields[f"source_{c}"]])
    for k, channel in enumerate(channels):
        fields[f"file_{channel}"] = names[k * len(fields) : (k + 1) * len(fields)]
    per_channel = [
        (fields["plate"][i], fields[f"file_{c}"][i], fields[f"source_{c}"][i], images.index[i])
        for i in range(len(fields))
        for c in channels
    ]
    stored = pd.DataFrame(per_channel, columns=["plate", "file", "source", "row"])
    refuse_shared_images(stored, src)


def _plain_path(location: str) -> str:
    """A location as a plain POSIX path: a URL's path unquoted, backslashes as slashes."""
    if "://" in location:
        return urllib.parse.unquote(urllib.parse.urlparse(location).path)
    return posixpath.normpath(location.replace("\\", "/"))


def _common_folder(a: str, b: str) -> str:
    """The folder two folders share; empty where they share none (or one is relative)."""
    try:
        return posixpath.commonpath([a, b])
    except ValueError:
        return ""


def stored_names(plates: list[str], locations: list[str]) -> list[str]:
    """Where each image is stored: ``<plate>/<its path below the plate's folder>``.

    The plate's folder is the deepest folder all of the plate's images lie under, so a plate
    whose images share one folder keeps the bare file names, and per-well (or per-channel)
    folders keep the path below it. Where a plate's images share no folder, the bare file names.

    Parameters
    ----------
    plates : list of str
        The plate of each image.
    locations : list of str
        Where each image lies (a path or URL; ``source_<channel>`` of the fields).

    Returns
    -------
    list of str

    Examples
    --------
    >>> stored_names(["P1", "P1"], ["/d/P1/A01/s1.tif", "/d/P1/A02/s1.tif"])
    ['P1/A01/s1.tif', 'P1/A02/s1.tif']
    >>> stored_names(["P1", "P1"], ["/d/P1/a.tif", "https://x.org/d/P1/b%20c.tif"])
    ['P1/a.tif', 'P1/b c.tif']
    """
    paths = [_plain_path(x) for x in locations]
    folders: dict[str, str] = {}
    for plate, path in zip(plates, paths):
        parent = posixpath.dirname(path)
        folders[plate] = _common_folder(folders[plate], parent) if plate in folders else parent
    out = []
    for plate, path in zip(plates, paths):
        folder = folders[plate]
        below = posixpath.relpath(path, folder) if folder else posixpath.basename(path)
        out.append(f"{plate}/{below}")
    return out


def refuse_shared_images(stored: pd.DataFrame, src: str) -> None:
    """Refuse two images of a plate under one file name, and one image listed twice.

    ``stored`` has a row per field and channel: ``plate``, ``file`` (``<plate>/<name>``),
    ``source`` and ``row`` (the LoadData table's index).
    """
    distinct = stored.drop_duplicates(["file", "source"])
    clash = distinct.duplicated("file", keep=False)
    if clash.any():
        first = distinct[clash].iloc[0]
        both = distinct[distinct["file"] == first["file"]].iloc[:2]
        lines = " and ".join(f"{line_of(r)} ({s})" for r, s in zip(both["row"], both["source"]))
        raise ScreenError(
            f"{src} lines {lines}: two different images of plate {first['plate']} would both be "
            f"stored as {first['file']} (cellmoa keeps each image at its path below the plate's "
            "folder; a URL's host and query are not part of it). Fix: list each image under one "
            "location, or give the two different file names or folders"
        )
    shared = stored.duplicated("source", keep=False)
    if shared.any():
        first = stored[shared].iloc[0]
        rows = stored[stored["source"] == first["source"]]["row"].unique()[:3]
        raise ScreenError(
            f"{src} lines {', '.join(str(line_of(r)) for r in rows)}: the image "
            f"{first['source']} is listed for more than one field or channel. Fix the "
            "FileName_/PathName_ columns"
        )
