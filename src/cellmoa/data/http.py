"""Fetching one file (an http, https or file URL, or a local path) safely.

Guarantees of :func:`fetch`:

- atomic: data goes to ``<dest>.part`` and is renamed only once complete, so an interrupted job
  never leaves a file that looks finished (``.part`` is kept between attempts to resume it);
- resumable: an http(s) download that drops continues from the partial file with a Range
  request, made conditional with ``If-Range`` on the ETag (or Last-Modified) of the transfer that
  began the partial file, so a file that changed on the server is fetched whole, never spliced;
  a partial file that is already complete (416) is taken as it is once its size matches the
  server's;
- bounded: every network call has a timeout; every transient fault (connection errors,
  time-outs, a dropped or malformed answer of any exception class, 5xx and 429 answers) is
  retried with exponential backoff, honouring ``Retry-After``, then a clear error names the URL
  and the cause;
- checked: a body shorter than Content-Length is an error, a ``max_bytes`` ceiling applies, and a
  ``validate`` function sees the complete file before it takes its final name (an invalid file
  is deleted, never left under the final name).

Archives are extracted by :mod:`cellmoa.data.archives`, what was fetched is recorded by
:mod:`cellmoa.data.manifests`, and a screen's images are fetched one by one by
:mod:`cellmoa.data.fetch`.
"""

from __future__ import annotations

import email.utils
import http.client
import logging
import os
import shutil
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)

#: bytes read (and written) at a time
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


def join_url(base: str, name: str) -> str:
    """``base`` + ``/`` + ``name`` for URLs and local folders alike.

    Parameters
    ----------
    base : str
        A URL or a local folder.
    name : str
        A file name under it (URL-quoted when ``base`` is a URL).

    Returns
    -------
    str

    Examples
    --------
    >>> join_url("https://x.org/BBBC021/", "a b.zip")
    'https://x.org/BBBC021/a%20b.zip'
    """
    if "://" in base:
        return base.rstrip("/") + "/" + urllib.parse.quote(name)
    return str(Path(base) / name)


def local_path(url: str) -> Path | None:
    """The file a local source names (a path or a ``file://`` URL), or None for a remote URL.

    Parameters
    ----------
    url : str
        A local path, a ``file://`` URL or a remote URL.

    Returns
    -------
    pathlib.Path or None

    Examples
    --------
    >>> local_path("file:///data/a.tif").as_posix(), local_path("https://x.org/a.tif")
    ('/data/a.tif', None)
    """
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
        """Count ``n`` more bytes; log if the interval passed (or ``force``)."""
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
    """Fetch ``url`` into ``dest`` atomically.

    A ``<dest>.part`` left by an earlier, interrupted call is continued where the server allows
    it.

    Parameters
    ----------
    url : str
        An http, https or file URL, or a local path.
    dest : pathlib.Path
        Where the file goes (its folder is created).
    retries : int
        Attempts after the first one for transient faults.
    timeout : float
        Seconds every network call may take.
    backoff : float
        Seconds before the first retry; doubled for each further one.
    max_bytes : int, optional
        A ceiling on the file's size.
    validate : callable, optional
        ``validate(path)`` is called on the complete file before it is renamed to ``dest``; an
        exception from it deletes the file and becomes a :class:`DownloadError` naming the URL.

    Returns
    -------
    pathlib.Path
        ``dest``.

    Raises
    ------
    DownloadError
        The file could not be fetched (after the retries), is too large or is not valid.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    local = local_path(url)
    if local is not None:
        _copy_local(url, local, part, max_bytes)
    elif urllib.parse.urlparse(url).scheme in ("http", "https"):
        _fetch_http(
            url, part, retries=retries, timeout=timeout, backoff=backoff, max_bytes=max_bytes
        )
    else:
        raise DownloadError(f"{url}: only http, https and file URLs (or local paths) are supported")
    _finish(url, part, dest, validate)
    return dest


def _copy_local(url: str, local: Path, part: Path, max_bytes: int | None) -> None:
    """Copy a local source to ``part``, within the ceiling."""
    if not local.is_file():
        raise DownloadError(f"{url}: no such file ({local})")
    size = local.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise DownloadError(f"{url}: {size} bytes is over the ceiling of {max_bytes} bytes")
    shutil.copyfile(local, part)


def _fetch_http(
    url: str, part: Path, *, retries: int, timeout: float, backoff: float, max_bytes: int | None
) -> None:
    """Complete ``part`` from an http(s) URL, retrying transient faults."""
    validator = part.with_name(part.name + ".validator")
    last_error: Exception | str | None = None
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
        return
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
    """A transfer ended short (retried: the next attempt resumes it)."""


def _http_attempt(
    url: str, part: Path, validator: Path, *, timeout: float, max_bytes: int | None
) -> None:
    """One attempt: open the transfer (resuming ``part``) and write its body."""
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
            _partial_complete(url, part, validator, have, exc)
            return
        raise
    with response:
        have, total, mode = _resume_point(url, response, validator, have)
        if max_bytes is not None and total is not None and total > max_bytes:
            raise DownloadError(f"{url}: {total} bytes is over the ceiling of {max_bytes} bytes")
        received = _write_body(url, response, part, mode, have, total, max_bytes)
    if total is not None and received != total:
        raise _Incomplete(f"body ended at {received} of {total} bytes (Content-Length)")


def _partial_complete(
    url: str, part: Path, validator: Path, have: int, exc: urllib.error.HTTPError
) -> None:
    """After a 416 answer: keep a partial file the server's size confirms, else start again."""
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


def _resume_point(url: str, response, validator: Path, have: int) -> tuple[int, int | None, str]:
    """``(bytes kept, total size or None, file mode)`` of an opened transfer."""
    length = response.headers.get("Content-Length")
    length = int(length) if length is not None else None
    if have and response.status == 206:
        log.info("%s: resuming at byte %d", url, have)
        return have, (have + length if length is not None else None), "ab"
    if have:
        log.info(
            "%s: the server sent the whole file (it changed, or does not resume); starting again",
            url,
        )
    tag = response.headers.get("ETag") or response.headers.get("Last-Modified") or ""
    validator.write_text(tag if not tag.startswith("W/") else "")  # weak ETags cannot guard a Range
    return 0, length, "wb"


def _write_body(
    url: str,
    response,
    part: Path,
    mode: str,
    have: int,
    total: int | None,
    max_bytes: int | None,
) -> int:
    """Write the response body to ``part``; returns the bytes it then holds."""
    progress = _Progress(url, total, have)
    received = have
    with open(part, mode) as out:
        # what has arrived: a stall keeps what came before it
        read = getattr(response, "read1", response.read)
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
    return received


def _range_total(content_range: str | None) -> int | None:
    """The full size from ``Content-Range: bytes */N`` (or ``bytes a-b/N``)."""
    if not content_range or "/" not in content_range:
        return None
    total = content_range.rsplit("/", 1)[1].strip()
    return int(total) if total.isdigit() else None
