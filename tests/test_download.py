import hashlib
import zipfile

import pytest
from httpserver import ScriptedServer

from cellmoa.download import ArchiveError, DownloadError, extract_zip, fetch, join_url

FAST = dict(retries=3, timeout=5, backoff=0.01)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture()
def server():
    with ScriptedServer() as s:
        yield s


@pytest.fixture(scope="module")
def archive_bytes(tiny_dataset):
    spec, source = tiny_dataset
    return (source / f"BBBC021_v1_images_{spec.plates()[0]}.zip").read_bytes()


def test_join_url_quotes_names():
    assert join_url("https://x.org/BBBC021/", "a b.zip") == "https://x.org/BBBC021/a%20b.zip"
    assert join_url("resources/src", "a.zip") == "resources/src/a.zip"


def test_dropped_connection_resumes_with_range(server, tmp_path, archive_bytes):
    server.files["a.zip"] = archive_bytes
    server.behaviour["a.zip"] = "drop"
    out = fetch(f"{server.url}/a.zip", tmp_path / "a.zip", **FAST)
    assert sha(out.read_bytes()) == sha(archive_bytes)
    assert server.requests[0] == ("a.zip", None)
    assert server.requests[1][1] == f"bytes={len(archive_bytes) // 2}-"


def test_503_twice_then_ok(server, tmp_path):
    server.files["m.csv"] = b"a,b\n1,2\n"
    server.behaviour["m.csv"] = "503x2"
    out = fetch(f"{server.url}/m.csv", tmp_path / "m.csv", **FAST)
    assert out.read_bytes() == b"a,b\n1,2\n"
    assert len(server.requests) == 3


def test_404_is_a_clear_error_and_leaves_nothing(server, tmp_path):
    with pytest.raises(DownloadError, match=r"missing\.zip: HTTP 404"):
        fetch(f"{server.url}/missing.zip", tmp_path / "missing.zip", **FAST)
    assert list(tmp_path.iterdir()) == []
    assert len(server.requests) == 1, "a 404 is not retried"


def test_short_body_is_detected_and_leaves_no_output(server, tmp_path, archive_bytes):
    server.files["a.zip"] = archive_bytes
    server.behaviour["a.zip"] = "short"
    with pytest.raises(DownloadError, match="Content-Length"):
        fetch(f"{server.url}/a.zip", tmp_path / "a.zip", **FAST)
    assert not (tmp_path / "a.zip").exists()


def test_size_ceiling(server, tmp_path, archive_bytes):
    server.files["a.zip"] = archive_bytes
    with pytest.raises(DownloadError, match="ceiling"):
        fetch(f"{server.url}/a.zip", tmp_path / "a.zip", max_bytes=100, **FAST)
    assert not (tmp_path / "a.zip").exists()


def test_unreachable_host_fails_fast_with_the_url(tmp_path):
    # port 9 on loopback: nothing listens, the connection is refused at once
    with pytest.raises(DownloadError, match=r"127\.0\.0\.1:9/x.zip"):
        fetch("http://127.0.0.1:9/x.zip", tmp_path / "x.zip", retries=1, timeout=2, backoff=0.01)


def test_only_http_https_file(tmp_path):
    with pytest.raises(DownloadError, match="only http"):
        fetch("ftp://example.org/x.zip", tmp_path / "x.zip")


def test_file_url_and_local_path(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"123")
    assert fetch(src.as_uri(), tmp_path / "a").read_bytes() == b"123"
    assert fetch(str(src), tmp_path / "b").read_bytes() == b"123"
    with pytest.raises(DownloadError, match="no such file"):
        fetch(str(tmp_path / "nope"), tmp_path / "c")


def test_extract_strips_the_plate_folder(tmp_path, tiny_dataset):
    spec, source = tiny_dataset
    plate = spec.plates()[0]
    archive = source / f"BBBC021_v1_images_{plate}.zip"
    with zipfile.ZipFile(archive) as zf:
        names = [n.split("/", 1)[1] for n in zf.namelist()]
    files = extract_zip(archive, tmp_path / plate, strip_prefix=plate, expected=names)
    assert sorted(p.name for p in files) == sorted(names)
    assert sorted(p.name for p in (tmp_path / plate).iterdir()) == sorted(names)


def test_archive_missing_a_listed_tiff(tmp_path, tiny_dataset):
    spec, source = tiny_dataset
    plate = spec.plates()[0]
    archive = source / f"BBBC021_v1_images_{plate}.zip"
    with pytest.raises(ArchiveError, match="missing: B99_s1_w1X.tif"):
        extract_zip(archive, tmp_path / plate, strip_prefix=plate, expected=["B99_s1_w1X.tif"])
    assert not (tmp_path / plate).exists()


def test_zip_slip_is_refused(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("plate/ok.tif", b"x")
        zf.writestr("plate/../../escaped.txt", b"gotcha")
    target = tmp_path / "deep" / "plate"
    with pytest.raises(ArchiveError, match="unsafe member"):
        extract_zip(evil, target, strip_prefix="plate")
    assert not (tmp_path / "escaped.txt").exists()
    assert not target.exists()


def test_corrupt_zip_is_named(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(ArchiveError, match="bad.zip: not a readable zip"):
        extract_zip(bad, tmp_path / "out")
