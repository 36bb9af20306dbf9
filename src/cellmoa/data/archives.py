"""Checking and extracting zip archives safely.

Members with absolute paths, ``..`` or links are refused before anything is written; only the
members the metadata lists are extracted, with a ceiling per member and per archive; a corrupt
member's error names the archive and the member. Extracted folders are written through
:func:`cellmoa.files.atomic_path`, so nothing is left at the target unless extraction succeeded.
"""

from __future__ import annotations

import logging
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from cellmoa.data.http import CHUNK
from cellmoa.data.manifests import missing_files_message
from cellmoa.files import atomic_path

log = logging.getLogger(__name__)

#: extraction ceilings: bytes of one member, and of one archive in all (a member or an archive
#: inflating beyond them is refused; BBBC021's TIFFs are 2.6 MB, its archives under 1 GB)
MAX_MEMBER_BYTES = 256 << 20
MAX_ARCHIVE_BYTES = 16 << 30


class ArchiveError(RuntimeError):
    """An archive is corrupt, unsafe or incomplete; the message names the archive."""


def safe_members(archive: zipfile.ZipFile, name: str) -> list[zipfile.ZipInfo]:
    """The archive's members, refusing absolute paths, ``..`` components (zip-slip) and links.

    Parameters
    ----------
    archive : zipfile.ZipFile
        An open archive.
    name : str
        The archive's name, for errors.

    Returns
    -------
    list of zipfile.ZipInfo

    Raises
    ------
    ArchiveError
        A member is unsafe.
    """
    members = []
    for info in archive.infolist():
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
            raise ArchiveError(f"{name}: refusing unsafe member path {info.filename!r}")
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise ArchiveError(
                f"{name}: refusing the link member {info.filename!r} "
                "(an archive of images holds no links)"
            )
        members.append(info)
    return members


def check_zip(path: Path) -> None:
    """A quick structural check of a downloaded archive: a readable zip with at least one member.

    Member contents are checked as they are extracted.

    Parameters
    ----------
    path : pathlib.Path
        The archive.

    Raises
    ------
    ValueError
        It is not a zip archive (an HTML error page is named as such), or it is empty.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            if not archive.infolist():
                raise ValueError("the zip archive is empty")
    except zipfile.BadZipFile as exc:
        head = Path(path).read_bytes()[:64] if Path(path).stat().st_size else b""
        hint = (
            " (it looks like an HTML page: the server answered with an error page)"
            if b"<" in head[:16]
            else ""
        )
        raise ValueError(f"not a zip archive{hint}: {exc}") from exc


def extract_zip(
    archive_path: Path,
    target: Path,
    *,
    strip_prefix: str | None = None,
    expected: list[str] | None = None,
    allow_missing: bool = False,
    max_member_bytes: int = MAX_MEMBER_BYTES,
    max_archive_bytes: int = MAX_ARCHIVE_BYTES,
) -> list[Path]:
    """Extract ``archive_path`` into ``target`` (created; written atomically as a folder).

    Nothing is left at ``target`` unless extraction succeeded.

    Parameters
    ----------
    archive_path : pathlib.Path
        The zip archive.
    target : pathlib.Path
        The folder to create.
    strip_prefix : str, optional
        A leading folder that members sit under (BBBC021: the plate folder) and that is removed
        from their paths; members outside it are an error.
    expected : list of str, optional
        Paths (relative to the prefix, ``/``-separated) that must be present; missing ones are
        an error naming them, and only they are extracted (other members are skipped, with a
        log line).
    allow_missing : bool
        Missing ``expected`` paths are a warning instead (the fields are skipped later).
    max_member_bytes, max_archive_bytes : int
        How far each member, and the archive in all, may inflate.

    Returns
    -------
    list of pathlib.Path
        The files extracted, under ``target``.

    Raises
    ------
    ArchiveError
        The archive is unreadable, corrupt, unsafe, incomplete or inflates beyond a ceiling.
    """
    archive_path, target = Path(archive_path), Path(target)
    try:
        archive = zipfile.ZipFile(archive_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(f"{archive_path}: not a readable zip archive ({exc})") from exc
    with archive:
        members = safe_members(archive, str(archive_path))
        relative = _relative_paths(archive_path, members, strip_prefix)
        wanted = [info for info in members if not info.is_dir()]
        if expected is not None:
            wanted = _listed_members(archive_path, wanted, relative, expected, allow_missing)
        written = []
        total = 0
        try:
            with atomic_path(target) as staging:
                staging.mkdir()
                for info in wanted:
                    out = staging / relative[info.filename]
                    total = _extract_member(
                        archive, archive_path, info, out, total, max_member_bytes, max_archive_bytes
                    )
                    written.append(relative[info.filename])
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
            raise ArchiveError(
                f"{archive_path}: corrupt archive ({type(exc).__name__}: {exc})"
            ) from exc
    return [target / p for p in written]


def _relative_paths(
    archive_path: Path, members: list[zipfile.ZipInfo], strip_prefix: str | None
) -> dict[str, PurePosixPath]:
    """Each file member's path under the target (``strip_prefix`` removed)."""
    relative = {}
    for info in members:
        if info.is_dir():
            continue
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if strip_prefix is not None:
            if path.parts[0] != strip_prefix:
                raise ArchiveError(
                    f"{archive_path}: member {info.filename!r} is not under the expected "
                    f"folder {strip_prefix!r}/"
                )
            path = PurePosixPath(*path.parts[1:])
        relative[info.filename] = path
    return relative


def _listed_members(
    archive_path: Path,
    wanted: list[zipfile.ZipInfo],
    relative: dict[str, PurePosixPath],
    expected: list[str],
    allow_missing: bool,
) -> list[zipfile.ZipInfo]:
    """The members ``expected`` lists, refusing missing ones and skipping unlisted ones.

    A missing member is a warning instead with ``allow_missing``; skipped ones are logged.
    """
    names = {str(p) for p in relative.values()}
    missing = sorted(set(expected) - names)
    if missing and not allow_missing:
        raise ArchiveError(missing_files_message(str(archive_path), missing))
    if missing:
        log.warning(
            "%s (on_bad_image: skip, their fields will be left out)",
            missing_files_message(str(archive_path), missing, False),
        )
    listed = set(expected)
    skipped = [info.filename for info in wanted if str(relative[info.filename]) not in listed]
    if skipped:
        log.info(
            "%s: %d member(s) the metadata does not list are not extracted: %s",
            archive_path,
            len(skipped),
            ", ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else ""),
        )
    return [info for info in wanted if str(relative[info.filename]) in listed]


def _extract_member(
    archive: zipfile.ZipFile,
    archive_path: Path,
    info: zipfile.ZipInfo,
    out: Path,
    total: int,
    max_member_bytes: int,
    max_archive_bytes: int,
) -> int:
    """Write one member to ``out`` within the ceilings; returns the archive's bytes so far."""
    if info.file_size > max_member_bytes:
        raise ArchiveError(
            f"{archive_path}: member {info.filename!r} inflates to {info.file_size} "
            f"bytes, over the ceiling of {max_member_bytes} per member"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    try:
        with archive.open(info) as src, open(out, "wb") as dst:
            while block := src.read(CHUNK):
                size += len(block)
                total += len(block)
                if size > max_member_bytes:
                    raise ArchiveError(
                        f"{archive_path}: member {info.filename!r} inflates beyond the "
                        f"ceiling of {max_member_bytes} bytes per member"
                    )
                if total > max_archive_bytes:
                    raise ArchiveError(
                        f"{archive_path}: the members inflate beyond the ceiling of "
                        f"{max_archive_bytes} bytes per archive"
                    )
                dst.write(block)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ArchiveError(
            f"{archive_path}: corrupt archive: member {info.filename!r} cannot be "
            f"decompressed ({type(exc).__name__}: {exc})"
        ) from exc
    return total
