"""Fetching a screen's images one by one into a plate folder (``dataset: loaddata``).

Each image is staged first (a rerun after a failure fetches only what is missing), local sources
are linked or copied, remote ones go through :func:`cellmoa.data.http.fetch` (resumed, retried,
bounded), and the plate folder takes its final name only once every image is there.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from cellmoa.data.http import DownloadError, fetch, local_path
from cellmoa.data.manifests import RawDataError
from cellmoa.files import atomic_path

log = logging.getLogger(__name__)


def fetch_images(
    items: list[tuple[str, str, str]],
    dest: Path,
    staging: Path,
    *,
    allow_missing: bool = False,
    link_local: bool = True,
    retries: int = 5,
    timeout: float = 60.0,
    max_bytes: int | None = None,
) -> tuple[list[Path], dict[str, str], list[str]]:
    """Fetch images one by one into ``dest`` (a plate folder).

    Files are gathered in ``staging`` first (kept between failed attempts, so a rerun fetches
    only what is missing) and moved into ``dest`` once all are there.

    Parameters
    ----------
    items : list of (str, str, str)
        ``(name under dest, source, where)``, with ``where`` naming the table line that lists
        it (for errors).
    dest : pathlib.Path
        The plate folder, written atomically.
    staging : pathlib.Path
        Where the files gather first.
    allow_missing : bool
        Leave out missing images (a local file that does not exist, HTTP 404) instead of
        raising.
    link_local : bool
        Hard-link local sources (symlink across file systems), else copy them.
    retries, timeout, max_bytes
        For http(s) sources, as in :func:`cellmoa.data.http.fetch`.

    Returns
    -------
    files : list of pathlib.Path
        The images under ``dest``.
    sources : dict
        ``{name: source}`` of every image fetched.
    missing : list of str
        The images left out (only with ``allow_missing``).

    Raises
    ------
    RawDataError
        Images are missing (without ``allow_missing``); the message names every one.
    DownloadError
        A remote image could not be fetched; the message names its table line.
    """
    dest, staging = Path(dest), Path(staging)
    staging.mkdir(parents=True, exist_ok=True)
    missing: list[str] = []
    sources: dict[str, str] = {}
    for done, (name, source, where) in enumerate(items, start=1):
        target = staging / name
        if not target.is_file() and not _stage(
            source, where, target, link_local, allow_missing, retries, timeout, max_bytes
        ):
            missing.append(f"{where}: {source}")
            continue
        sources[name] = source
        if done % 200 == 0 or done == len(items):
            log.info("%s: %d of %d images in place", dest, done, len(items))
    if missing and not allow_missing:
        shown = "; ".join(missing[:5]) + (
            f"; and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise RawDataError(
            f"{len(missing)} image(s) listed in the LoadData CSV do not exist: {shown}. Fix the "
            "FileName_/PathName_ columns (or data.image_root, against which relative folders are "
            "resolved), or set preprocessing.normalization.on_bad_image: skip to leave those "
            "fields out"
        )
    with atomic_path(dest) as tmp:
        tmp.mkdir(parents=True)
        for name in sources:
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, tmp / name)
    shutil.rmtree(staging, ignore_errors=True)
    return [dest / name for name in sources], sources, missing


def _stage(
    source: str,
    where: str,
    target: Path,
    link_local: bool,
    allow_missing: bool,
    retries: int,
    timeout: float,
    max_bytes: int | None,
) -> bool:
    """Put one image at ``target``; False where it is missing.

    An HTTP 404 counts as missing only with ``allow_missing``; other failures raise.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    local = local_path(source)
    if local is not None:
        if not local.is_file():
            return False
        _place_local(local, target, link_local)
        return True
    try:
        fetch(source, target, retries=retries, timeout=timeout, max_bytes=max_bytes)
    except DownloadError as exc:
        if allow_missing and "HTTP 404" in str(exc):
            return False
        raise DownloadError(f"{where}: {exc}") from exc
    return True


def _place_local(source: Path, target: Path, link: bool) -> None:
    """Link (or copy) a local image to ``target`` through a ``.part`` name."""
    part = target.with_name(target.name + ".part")
    part.unlink(missing_ok=True)
    if link:
        try:
            os.link(source, part)
        except OSError:  # another file system, or links not allowed: a symbolic link
            part.symlink_to(source.resolve())
    else:
        shutil.copyfile(source, part)
    os.replace(part, target)
