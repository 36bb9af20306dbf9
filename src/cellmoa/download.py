"""Fetching files (http, https, file URLs or local paths) and extracting archives safely.

Guarantees:

- atomic: data goes to ``<dest>.part`` and is renamed only once complete, so an interrupted job
  never leaves a file that looks finished (``.part`` is kept between attempts to resume it;
  extracted folders and manifests go through :func:`cellmoa.files.atomic_path`);
- resumable: an http(s) download that drops continues from the partial file with a Range request;
- bounded: every network call has a timeout; connection errors, time-outs and 5xx answers are
  retried with exponential backoff, then a clear error names the URL and the cause;
- checked: a body shorter than Content-Length is an error, and a ``max_bytes`` ceiling applies;
- safe: archive members with absolute paths or ``..`` are refused before anything is written.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from cellmoa.files import atomic_path

log = logging.getLogger(__name__)

CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A file could not be fetched; the message names the URL and the cause."""


class ArchiveError(RuntimeError):
    """An archive is corrupt, unsafe or incomplete; the message names the archive."""


def join_url(base: str, name: str) -> str:
    """``base`` + ``/`` + ``name`` for URLs and local folders alike (the name is URL-quoted)."""
    if "://" in base:
        return base.rstrip("/") + "/" + urllib.parse.quote(name)
    return str(Path(base) / name)


def _local_path(url: str) -> Path | None:
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
) -> Path:
    """Fetch ``url`` into ``dest`` atomically. Returns ``dest``.

    A ``<dest>.part`` left by an earlier, interrupted call is continued where the server allows it.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    parsed = urllib.parse.urlparse(url)
    local = _local_path(url)
    if local is not None:
        if not local.is_file():
            raise DownloadError(f"{url}: no such file ({local})")
        size = local.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise DownloadError(f"{url}: {size} bytes is over the ceiling of {max_bytes} bytes")
        shutil.copyfile(local, part)
        part.replace(dest)
        return dest
    if parsed.scheme not in ("http", "https"):
        raise DownloadError(f"{url}: only http, https and file URLs (or local paths) are supported")

    last_error: Exception | None = None
    for attempt in range(retries + 1):
        if attempt:
            delay = backoff * 2 ** (attempt - 1)
            log.warning("%s: attempt %d/%d failed (%s); retrying in %.0f s", url, attempt, retries + 1, last_error, delay)
            time.sleep(delay)
        try:
            _http_attempt(url, part, timeout=timeout, max_bytes=max_bytes)
            part.replace(dest)
            return dest
        except urllib.error.HTTPError as exc:
            last_error = exc
            if exc.code < 500 and exc.code != 429:
                part.unlink(missing_ok=True)
                raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
        except _Incomplete as exc:
            last_error = exc  # keep the partial file: the next attempt resumes it
        except DownloadError:
            part.unlink(missing_ok=True)
            raise
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            last_error = exc
    raise DownloadError(f"{url}: failed after {retries + 1} attempts; last error: {last_error}")


class _Incomplete(OSError):
    pass


def _http_attempt(url: str, part: Path, *, timeout: float, max_bytes: int | None) -> None:
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "cellmoa"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        status = response.status
        length = response.headers.get("Content-Length")
        length = int(length) if length is not None else None
        if have and status == 206:
            total = have + length if length is not None else None
            mode = "ab"
            log.info("%s: resuming at byte %d", url, have)
        else:
            have, total, mode = 0, length, "wb"
        if max_bytes is not None and total is not None and total > max_bytes:
            raise DownloadError(f"{url}: {total} bytes is over the ceiling of {max_bytes} bytes")
        progress = _Progress(url, total, have)
        received = have
        with open(part, mode) as out:
            while True:
                chunk = response.read(CHUNK)
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


def safe_members(archive: zipfile.ZipFile, name: str) -> list[zipfile.ZipInfo]:
    """The archive's members, refusing absolute paths and ``..`` components (zip-slip)."""
    members = []
    for info in archive.infolist():
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
            raise ArchiveError(f"{name}: refusing unsafe member path {info.filename!r}")
        members.append(info)
    return members


def extract_zip(
    archive_path: Path,
    target: Path,
    *,
    strip_prefix: str | None = None,
    expected: list[str] | None = None,
) -> list[Path]:
    """Extract ``archive_path`` into ``target`` (created; written atomically as a folder).

    ``strip_prefix``: a leading folder that members sit under (BBBC021: the plate folder) and that
    is removed from their paths; members outside it are an error. ``expected`` lists paths
    (relative to the prefix, ``/``-separated) that must be present; missing ones are an error
    naming them. Nothing is left at ``target`` unless extraction succeeded.
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
        if expected is not None:
            missing = sorted(set(expected) - names)
            if missing:
                shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
                raise ArchiveError(f"{archive_path}: {len(missing)} file(s) listed in the metadata are missing: {shown}")
        written = []
        try:
            with atomic_path(target) as staging:
                staging.mkdir()
                for info in members:
                    if info.is_dir():
                        continue
                    out = staging / relative[info.filename]
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(info) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst, CHUNK)
                    written.append(relative[info.filename])
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ArchiveError(f"{archive_path}: corrupt archive ({exc})") from exc
    return [target / p for p in written]


# --- manifests: what was downloaded, to detect later changes -------------------------------


def sha256sum(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(manifest: Path, root: Path, files: list[Path], sources: dict[str, str] | None = None) -> None:
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


def verify_manifest(manifest: Path, root: Path, check_hash: bool = True) -> None:
    """Raise :class:`ArchiveError` naming every file under ``root`` that is missing or differs
    (size, and sha256 when ``check_hash``) from ``manifest``."""
    problems = []
    for row in read_manifest(manifest):
        path = Path(root) / row["path"]
        if not path.is_file():
            problems.append(f"{row['path']} is missing")
        elif path.stat().st_size != int(row["size"]):
            problems.append(f"{row['path']} changed size ({path.stat().st_size} != {row['size']} bytes)")
        elif check_hash and sha256sum(path) != row["sha256"]:
            problems.append(f"{row['path']} changed content (sha256 differs)")
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise ArchiveError(
            f"files under {root} differ from the manifest {manifest} written when they were downloaded: "
            f"{shown}. Delete the folder (and the manifest) and run the workflow again to fetch them anew."
        )
