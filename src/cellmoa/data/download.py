"""Fetching files (http, https, file URLs or local paths) and extracting archives safely.

Guarantees:

- atomic: data goes to ``<dest>.part`` and is renamed only once complete, so an interrupted job
  never leaves a file that looks finished (``.part`` is kept between attempts to resume it;
  extracted folders and manifests go through :func:`cellmoa.files.atomic_path`);
- resumable: an http(s) download that drops continues from the partial file with a Range request,
  made conditional with ``If-Range`` on the ETag (or Last-Modified) of the transfer that began the
  partial file, so a file that changed on the server is fetched whole, never spliced; a partial
  file that is already complete (416) is taken as it is once its size matches the server's;
- bounded: every network call has a timeout; every transient fault (connection errors, time-outs,
  a dropped or malformed answer of any exception class, 5xx and 429 answers) is retried with
  exponential backoff, honouring ``Retry-After``, then a clear error names the URL and the cause;
- checked: a body shorter than Content-Length is an error, a ``max_bytes`` ceiling applies, and a
  ``validate`` function sees the complete file before it takes its final name (an invalid file is
  deleted, never left under the final name);
- safe: archive members with absolute paths, ``..`` or links are refused before anything is
  written; only the members the metadata lists are extracted, with a ceiling per member and per
  archive; a corrupt member's error names the archive and the member.
"""

from __future__ import annotations

import email.utils
import hashlib
import http.client
import logging
import os
import shutil
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from cellmoa.files import atomic_path

log = logging.getLogger(__name__)

CHUNK = 1 << 20
#: the longest Retry-After honoured (seconds); a longer one is waited for this long
MAX_RETRY_AFTER = 300.0
#: what a failed attempt may raise and still be retried (the HTTP stack raises many classes)
TRANSIENT = (
    urllib.error.URLError,
    http.client.HTTPException,
    ConnectionError,
    TimeoutError,
    socket.timeout,
    OSError,
)


class DownloadError(RuntimeError):
    """A file could not be fetched; the message names the URL and the cause."""


class ArchiveError(RuntimeError):
    """An archive is corrupt, unsafe or incomplete; the message names the archive."""


class RawDataError(RuntimeError):
    """Files on disk (a plate folder, downloaded or in ``data.raw_dir``) are missing or changed;
    the message names them and the ways forward."""


def missing_files_message(where: str, missing: list[str], allow_skip: bool = True) -> str:
    """What to say about image files the metadata lists but ``where`` lacks."""
    shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    message = f"{where}: {len(missing)} file(s) listed in the metadata are missing: {shown}"
    if allow_skip:
        message += (
            ". Either restore them, or set preprocessing.normalization.on_bad_image: skip to leave "
            "their fields out (they are then listed in results/tensors/<plate>.skipped.tsv)"
        )
    return message


def join_url(base: str, name: str) -> str:
    """``base`` + ``/`` + ``name`` for URLs and local folders alike (the name is URL-quoted)."""
    if "://" in base:
        return base.rstrip("/") + "/" + urllib.parse.quote(name)
    return str(Path(base) / name)


def local_path(url: str) -> Path | None:
    """The file a local source names (a path or a ``file://`` URL), or None for a remote URL."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and os.name == "nt"):
        return Path(url)
    return None


class _Progress:
    """Logs bytes, percent and rate at most every ``interval`` seconds (no flood of lines)."""

    def __init__(self, url: str, total: int | None, start: int, interval: float = 10.0):
        self.url, self.total, self.done = url, total, start
        self.t0 = self.last = time.monotonic()
        self.start = start
        self.interval = interval

    def update(self, n: int, force: bool = False) -> None:
        self.done += n
        now = time.monotonic()
        if force or now - self.last >= self.interval:
            self.last = now
            rate = (self.done - self.start) / max(now - self.t0, 1e-9) / 1e6
            pct = f" ({100.0 * self.done / self.total:.1f}%)" if self.total else ""
            log.info("%s: %.1f MB%s at %.1f MB/s", self.url, self.done / 1e6, pct, rate)


def fetch(
    url: str,
    dest: Path,
    *,
    retries: int = 5,
    timeout: float = 60.0,
    backoff: float = 2.0,
    max_bytes: int | None = None,
    validate=None,
) -> Path:
    """Fetch ``url`` into ``dest`` atomically. Returns ``dest``.

    A ``<dest>.part`` left by an earlier, interrupted call is continued where the server allows it.
    ``validate(path)``, if given, is called on the complete file before it is renamed to ``dest``;
    an exception from it deletes the file and becomes a :class:`DownloadError` naming the URL.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    validator = dest.with_name(dest.name + ".part.validator")
    parsed = urllib.parse.urlparse(url)
    local = local_path(url)
    if local is not None:
        if not local.is_file():
            raise DownloadError(f"{url}: no such file ({local})")
        size = local.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise DownloadError(f"{url}: {size} bytes is over the ceiling of {max_bytes} bytes")
        shutil.copyfile(local, part)
        _finish(url, part, dest, validate)
        return dest
    if parsed.scheme not in ("http", "https"):
        raise DownloadError(f"{url}: only http, https and file URLs (or local paths) are supported")

    last_error: Exception | None = None
    wait: float | None = None
    for attempt in range(retries + 1):
        if attempt:
            delay = backoff * 2 ** (attempt - 1)
            if wait is not None:
                delay = max(delay, min(wait, MAX_RETRY_AFTER))
            log.warning(
                "%s: attempt %d/%d failed (%s); retrying in %.0f s",
                url,
                attempt,
                retries + 1,
                last_error,
                delay,
            )
            time.sleep(delay)
        wait = None
        try:
            _http_attempt(url, part, validator, timeout=timeout, max_bytes=max_bytes)
        except urllib.error.HTTPError as exc:
            last_error = exc
            if exc.code < 500 and exc.code not in (408, 429):
                part.unlink(missing_ok=True)
                validator.unlink(missing_ok=True)
                raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
            wait = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            continue
        except DownloadError:
            part.unlink(missing_ok=True)
            validator.unlink(missing_ok=True)
            raise
        except TRANSIENT as exc:  # the partial file is kept: the next attempt resumes it
            last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            continue
        validator.unlink(missing_ok=True)
        _finish(url, part, dest, validate)
        return dest
    raise DownloadError(f"{url}: failed after {retries + 1} attempts; last error: {last_error}")


def _finish(url: str, part: Path, dest: Path, validate) -> None:
    """Validate the complete ``part`` and give it its final name, or delete it."""
    if validate is not None:
        try:
            validate(part)
        except Exception as exc:
            part.unlink(missing_ok=True)
            raise DownloadError(
                f"{url}: the file fetched is not valid, so nothing was kept under {dest}: {exc}"
            ) from exc
    part.replace(dest)


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _Incomplete(OSError):
    pass


def _http_attempt(
    url: str, part: Path, validator: Path, *, timeout: float, max_bytes: int | None
) -> None:
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "cellmoa"})
    if have:
        request.add_header("Range", f"bytes={have}-")
        if validator.exists() and validator.read_text().strip():
            request.add_header("If-Range", validator.read_text().strip())
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            size = _range_total(exc.headers.get("Content-Range"))
            if size == have:
                log.info("%s: the partial file is already complete (%d bytes)", url, have)
                return
            log.warning(
                "%s: the partial file (%d bytes) does not fit the server's (%s bytes); starting again",
                url,
                have,
                size,
            )
            part.unlink(missing_ok=True)
            validator.unlink(missing_ok=True)
            raise _Incomplete(f"HTTP 416 for a partial file of {have} bytes") from exc
        raise
    with response:
        status = response.status
        length = response.headers.get("Content-Length")
        length = int(length) if length is not None else None
        if have and status == 206:
            total = have + length if length is not None else None
            mode = "ab"
            log.info("%s: resuming at byte %d", url, have)
        else:
            if have:
                log.info(
                    "%s: the server sent the whole file (it changed, or does not resume); starting again",
                    url,
                )
            have, total, mode = 0, length, "wb"
            tag = response.headers.get("ETag") or response.headers.get("Last-Modified") or ""
            validator.write_text(
                tag if not tag.startswith("W/") else ""
            )  # weak ETags cannot guard a Range
        if max_bytes is not None and total is not None and total > max_bytes:
            raise DownloadError(f"{url}: {total} bytes is over the ceiling of {max_bytes} bytes")
        progress = _Progress(url, total, have)
        received = have
        with open(part, mode) as out:
            read = getattr(
                response, "read1", response.read
            )  # what has arrived: a stall keeps what came before it
            while True:
                chunk = read(CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                progress.update(len(chunk))
                if max_bytes is not None and received > max_bytes:
                    raise DownloadError(f"{url}: more than the ceiling of {max_bytes} bytes")
        progress.update(0, force=True)
    if total is not None and received != total:
        raise _Incomplete(f"body ended at {received} of {total} bytes (Content-Length)")


def _range_total(content_range: str | None) -> int | None:
    """The full size from ``Content-Range: bytes */N`` (or ``bytes a-b/N``)."""
    if not content_range or "/" not in content_range:
        return None
    total = content_range.rsplit("/", 1)[1].strip()
    return int(total) if total.isdigit() else None


#: extraction ceilings: bytes of one member, and of one archive in all (a member or an archive
#: inflating beyond them is refused; BBBC021's TIFFs are 2.6 MB, its archives under 1 GB)
MAX_MEMBER_BYTES = 256 << 20
MAX_ARCHIVE_BYTES = 16 << 30


def safe_members(archive: zipfile.ZipFile, name: str) -> list[zipfile.ZipInfo]:
    """The archive's members, refusing absolute paths, ``..`` components (zip-slip) and links."""
    members = []
    for info in archive.infolist():
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
            raise ArchiveError(f"{name}: refusing unsafe member path {info.filename!r}")
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise ArchiveError(
                f"{name}: refusing the link member {info.filename!r} (an archive of images holds no links)"
            )
        members.append(info)
    return members


def check_zip(path: Path) -> None:
    """A quick structural check of a downloaded archive: a readable zip with at least one member
    (raises ValueError otherwise). Member contents are checked as they are extracted."""
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

    ``strip_prefix``: a leading folder that members sit under (BBBC021: the plate folder) and that
    is removed from their paths; members outside it are an error. ``expected`` lists paths
    (relative to the prefix, ``/``-separated) that must be present; missing ones are an error
    naming them (with ``allow_missing``, a warning: the fields are skipped later), and only they
    are extracted (other members are skipped, with a log line). Each
    member may inflate to ``max_member_bytes``, the archive to ``max_archive_bytes`` in all.
    Nothing is left at ``target`` unless extraction succeeded.
    """
    archive_path, target = Path(archive_path), Path(target)
    try:
        archive = zipfile.ZipFile(archive_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(f"{archive_path}: not a readable zip archive ({exc})") from exc
    with archive:
        members = safe_members(archive, str(archive_path))
        relative = {}
        for info in members:
            if info.is_dir():
                continue
            path = PurePosixPath(info.filename.replace("\\", "/"))
            if strip_prefix is not None:
                if path.parts[0] != strip_prefix:
                    raise ArchiveError(
                        f"{archive_path}: member {info.filename!r} is not under the expected folder {strip_prefix!r}/"
                    )
                path = PurePosixPath(*path.parts[1:])
            relative[info.filename] = path
        names = {str(p) for p in relative.values()}
        wanted = [info for info in members if not info.is_dir()]
        if expected is not None:
            missing = sorted(set(expected) - names)
            if missing and not allow_missing:
                raise ArchiveError(missing_files_message(str(archive_path), missing))
            if missing:
                log.warning(
                    "%s (on_bad_image: skip, their fields will be left out)",
                    missing_files_message(str(archive_path), missing, False),
                )
            listed = set(expected)
            skipped = [
                info.filename for info in wanted if str(relative[info.filename]) not in listed
            ]
            if skipped:
                log.info(
                    "%s: %d member(s) the metadata does not list are not extracted: %s",
                    archive_path,
                    len(skipped),
                    ", ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else ""),
                )
            wanted = [info for info in wanted if str(relative[info.filename]) in listed]
        written = []
        total = 0
        try:
            with atomic_path(target) as staging:
                staging.mkdir()
                for info in wanted:
                    if info.file_size > max_member_bytes:
                        raise ArchiveError(
                            f"{archive_path}: member {info.filename!r} inflates to {info.file_size} "
                            f"bytes, over the ceiling of {max_member_bytes} per member"
                        )
                    out = staging / relative[info.filename]
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
                    written.append(relative[info.filename])
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
            raise ArchiveError(
                f"{archive_path}: corrupt archive ({type(exc).__name__}: {exc})"
            ) from exc
    return [target / p for p in written]


# --- manifests: what was downloaded, to detect later changes -------------------------------


def sha256sum(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(
    manifest: Path, root: Path, files: list[Path], sources: dict[str, str] | None = None
) -> None:
    """A TSV of ``path`` (relative to ``root``), ``size``, ``sha256`` and ``source`` per file, written atomically."""
    manifest, root = Path(manifest), Path(root)
    with atomic_path(manifest) as tmp, open(tmp, "w") as out:
        out.write("path\tsize\tsha256\tsource\n")
        for path in sorted(Path(f) for f in files):
            rel = path.relative_to(root).as_posix()
            source = (sources or {}).get(rel, "")
            out.write(f"{rel}\t{path.stat().st_size}\t{sha256sum(path)}\t{source}\n")


def read_manifest(manifest: Path) -> list[dict]:
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
    """Raise :class:`RawDataError` naming every file under ``root`` that is missing or differs
    (size, and sha256 when ``check_hash``) from ``manifest``, with advice that fits where the
    files came from: ``origin="download"`` (delete and fetch again) or ``"raw_dir"`` (the
    scientist's own files: restore them, or accept them by deleting only the manifest)."""
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
            advice = f"Delete {root} and the manifest {manifest}, and run the workflow again to fetch them anew."
            when = "written when they were downloaded"
        else:
            advice = (
                f"These are your own files (data.raw_dir): restore them; or, to accept them as they are "
                f"now, delete only the manifest {manifest} (the next run records them again). Do not "
                "delete the folder: nothing would fetch it again."
            )
            when = "written when they were first checked"
        raise RawDataError(
            f"files under {root} differ from the manifest {manifest} {when}: {shown}. {advice}"
        )


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
    """Fetch images one by one into ``dest`` (a plate folder): ``items`` are ``(name under dest,
    source, where)`` with ``where`` naming the table line that lists it (for errors). Local
    sources are hard-linked (symlinked across file systems) with ``link_local``, else copied;
    http(s) sources go through :func:`fetch` (resumed, retried, bounded).

    Files are gathered in ``staging`` first (kept between failed attempts, so a rerun fetches only
    what is missing) and moved into ``dest`` once all are there. Returns the files, their
    sources (``{name: source}``) and the names that were missing (only with ``allow_missing``;
    otherwise a missing image is a :class:`RawDataError` naming every one).
    """
    dest, staging = Path(dest), Path(staging)
    staging.mkdir(parents=True, exist_ok=True)
    missing: list[str] = []
    sources: dict[str, str] = {}
    for done, (name, source, where) in enumerate(items, start=1):
        target = staging / name
        local = local_path(source)
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            if local is not None:
                if not local.is_file():
                    missing.append(f"{where}: {source}")
                    continue
                _place_local(local, target, link_local)
            else:
                try:
                    fetch(source, target, retries=retries, timeout=timeout, max_bytes=max_bytes)
                except DownloadError as exc:
                    if allow_missing and "HTTP 404" in str(exc):
                        missing.append(f"{where}: {source}")
                        continue
                    raise DownloadError(f"{where}: {exc}") from exc
        sources[name] = source
        if done % 200 == 0 or done == len(items):
            log.info("%s: %d of %d images in place", dest, done, len(items))
    if missing and not allow_missing:
        shown = "; ".join(missing[:5]) + (
            f"; and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise RawDataError(
            f"{len(missing)} image(s) listed in the LoadData CSV do not exist: {shown}. Fix the FileName_/PathName_ "
            "columns (or data.image_root, against which relative folders are resolved), or set "
            "preprocessing.normalization.on_bad_image: skip to leave those fields out"
        )
    with atomic_path(dest) as tmp:
        tmp.mkdir(parents=True)
        for name in sources:
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, tmp / name)
    shutil.rmtree(staging, ignore_errors=True)
    return [dest / name for name in sources], sources, missing


def _place_local(source: Path, target: Path, link: bool) -> None:
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
