"""Manifests: what was downloaded (or found in ``data.raw_dir``), to detect later changes.

A manifest is a TSV of ``path`` (relative to a root folder), ``size``, ``sha256`` and ``source``
per file, written atomically (:func:`cellmoa.files.atomic_path`) once the files are in place;
:func:`verify_manifest` names every file that is missing or changed since, with advice that fits
where the files came from.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cellmoa.data.http import CHUNK
from cellmoa.files import atomic_path


class RawDataError(RuntimeError):
    """Files on disk (a plate folder, downloaded or in ``data.raw_dir``) are missing or changed.

    The message names them and the ways forward.
    """


def missing_files_message(where: str, missing: list[str], allow_skip: bool = True) -> str:
    """What to say about image files the metadata lists but ``where`` lacks.

    Parameters
    ----------
    where : str
        The archive or folder that lacks them.
    missing : list of str
        Their names (the first five are shown).
    allow_skip : bool
        Add the advice to skip their fields (``on_bad_image: skip``).

    Returns
    -------
    str

    Examples
    --------
    >>> missing_files_message("P1.zip", ["a.tif"], allow_skip=False)
    'P1.zip: 1 file(s) listed in the metadata are missing: a.tif'
    """
    shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    message = f"{where}: {len(missing)} file(s) listed in the metadata are missing: {shown}"
    if allow_skip:
        message += (
            ". Either restore them, or set preprocessing.normalization.on_bad_image: skip to "
            "leave their fields out (they are then listed in results/tensors/<plate>.skipped.tsv)"
        )
    return message


def sha256sum(path: Path) -> str:
    """The SHA-256 of a file's contents, as hex digits.

    Parameters
    ----------
    path : pathlib.Path

    Returns
    -------
    str
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(
    manifest: Path, root: Path, files: list[Path], sources: dict[str, str] | None = None
) -> None:
    """Write a manifest of ``files`` atomically.

    Parameters
    ----------
    manifest : pathlib.Path
        The TSV to write: ``path`` (relative to ``root``), ``size``, ``sha256`` and ``source``.
    root : pathlib.Path
        The folder the paths are relative to.
    files : list of pathlib.Path
        The files, under ``root``.
    sources : dict, optional
        Where each file came from, by its relative path (empty where not given).
    """
    manifest, root = Path(manifest), Path(root)
    with atomic_path(manifest) as tmp, open(tmp, "w") as out:
        out.write("path\tsize\tsha256\tsource\n")
        for path in sorted(Path(f) for f in files):
            rel = path.relative_to(root).as_posix()
            source = (sources or {}).get(rel, "")
            out.write(f"{rel}\t{path.stat().st_size}\t{sha256sum(path)}\t{source}\n")


def read_manifest(manifest: Path) -> list[dict]:
    """The rows of a manifest, one dict per file (keys from its header).

    Parameters
    ----------
    manifest : pathlib.Path

    Returns
    -------
    list of dict

    Raises
    ------
    ValueError
        The file is not a cellmoa manifest.
    """
    rows = []
    with open(manifest) as fh:
        header = fh.readline().rstrip("\n").split("\t")
        if header[:3] != ["path", "size", "sha256"]:
            raise ValueError(f"{manifest}: not a cellmoa manifest (header {header})")
        for line in fh:
            values = line.rstrip("\n").split("\t")
            rows.append(dict(zip(header, values)))
    return rows


def verify_manifest(
    manifest: Path, root: Path, check_hash: bool = True, origin: str = "download"
) -> None:
    """Check the files under ``root`` against ``manifest``.

    Parameters
    ----------
    manifest : pathlib.Path
        The manifest written when the files were downloaded (or first checked).
    root : pathlib.Path
        The folder its paths are relative to.
    check_hash : bool
        Compare the sha256 too, not only the size.
    origin : {"download", "raw_dir"}
        Where the files came from, for the advice: ``"download"`` (delete and fetch again) or
        ``"raw_dir"`` (the scientist's own files: restore them, or accept them by deleting only
        the manifest).

    Raises
    ------
    RawDataError
        Naming every file that is missing or differs.
    ValueError
        ``origin`` is neither value.
    """
    if origin not in ("download", "raw_dir"):
        raise ValueError(f"origin must be 'download' or 'raw_dir', not {origin!r}")
    problems = []
    for row in read_manifest(manifest):
        path = Path(root) / row["path"]
        if not path.is_file():
            problems.append(f"{row['path']} is missing")
        elif path.stat().st_size != int(row["size"]):
            problems.append(
                f"{row['path']} changed size ({path.stat().st_size} != {row['size']} bytes)"
            )
        elif check_hash and sha256sum(path) != row["sha256"]:
            problems.append(f"{row['path']} changed content (sha256 differs)")
    if problems:
        shown = "; ".join(problems[:5]) + (
            f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        if origin == "download":
            advice = (
                f"Delete {root} and the manifest {manifest}, and run the workflow again to fetch "
                "them anew."
            )
            when = "written when they were downloaded"
        else:
            advice = (
                "These are your own files (data.raw_dir): restore them; or, to accept them as "
                f"they are now, delete only the manifest {manifest} (the next run records them "
                "again). Do not delete the folder: nothing would fetch it again."
            )
            when = "written when they were first checked"
        raise RawDataError(
            f"files under {root} differ from the manifest {manifest} {when}: {shown}. {advice}"
        )
