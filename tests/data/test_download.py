import hashlib
import zipfile

import pytest

from cellmoa.data.archives import ArchiveError, extract_zip
from cellmoa.data.http import DownloadError, fetch, join_url
from tests.helpers.httpserver import ScriptedServer

pytestmark = pytest.mark.unit

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


# -- transient faults of every kind, 416, Retry-After, If-Range (issue 18) ----------------------


@pytest.mark.parametrize("mode", ["chunked_drop", "bad_status"])
def test_any_transient_fault_is_retried(server, tmp_path, archive_bytes, mode):
    server.files["a.zip"] = archive_bytes
    server.behaviour["a.zip"] = mode
    dest = fetch(f"{server.url}/a.zip", tmp_path / "a.zip", **FAST)
    assert sha(dest.read_bytes()) == sha(archive_bytes)
    assert len(server.requests) == 2


def test_a_stalled_transfer_times_out_and_resumes(server, tmp_path, archive_bytes):
    server.files["a.zip"] = archive_bytes
    server.behaviour["a.zip"] = "stall"
    dest = fetch(f"{server.url}/a.zip", tmp_path / "a.zip", retries=3, timeout=1, backoff=0.01)
    assert dest.read_bytes() == archive_bytes
    assert server.requests[1][1] is not None and server.requests[1][1].startswith(
        "bytes="
    )  # resumed


def test_the_final_error_names_the_url_and_the_cause(server, tmp_path, archive_bytes):
    server.files["a.zip"] = archive_bytes
    server.behaviour["a.zip"] = "short"
    with pytest.raises(
        DownloadError, match=r"a\.zip: failed after 4 attempts; last error: .*Content-Length"
    ):
        fetch(f"{server.url}/a.zip", tmp_path / "a.zip", **FAST)


def test_a_complete_part_file_is_taken_not_refused(server, tmp_path, archive_bytes):
    server.files["a.zip"] = archive_bytes
    (tmp_path / "a.zip.part").write_bytes(
        archive_bytes
    )  # killed after the last byte, before the rename
    dest = fetch(f"{server.url}/a.zip", tmp_path / "a.zip", **FAST)
    assert dest.read_bytes() == archive_bytes and not (tmp_path / "a.zip.part").exists()
    # a part file longer than the file: fetched again from the start
    (tmp_path / "b.zip.part").write_bytes(archive_bytes + b"junk")
    server.files["b.zip"] = archive_bytes
    assert fetch(f"{server.url}/b.zip", tmp_path / "b.zip", **FAST).read_bytes() == archive_bytes


def test_retry_after_is_honoured(server, tmp_path, monkeypatch):
    import cellmoa.data.http as data_http

    waits = []
    monkeypatch.setattr(data_http.time, "sleep", waits.append)
    server.files["m.csv"] = b"a,b\n1,2\n"
    server.behaviour["m.csv"] = "retry_after"
    fetch(f"{server.url}/m.csv", tmp_path / "m.csv", retries=2, timeout=5, backoff=0.01)
    assert waits == [1.0]  # the server's Retry-After, not the 0.01 s backoff


def test_a_file_changed_on_the_server_is_not_spliced(server, tmp_path):
    v1, v2 = b"1" * 100_000, b"2" * 100_000
    server.files["a.zip"], server.files["a.zip#v2"] = v1, v2
    server.behaviour["a.zip"] = "changes"
    dest = fetch(f"{server.url}/a.zip", tmp_path / "a.zip", **FAST)
    assert dest.read_bytes() == v2
    assert server.if_range[1] is not None  # the resume was conditional on the first transfer's ETag


def test_an_invalid_file_never_takes_its_final_name(server, tmp_path):
    from cellmoa.data.datasets import BBBC021

    dataset = BBBC021()
    pages = {
        "html": b"<!DOCTYPE html><html><body>503 Service Unavailable</body></html>",
        "columns": b"compound,moa\nDMSO,DMSO\n",
        "binary": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    }
    for kind, body in pages.items():
        server.files[f"{kind}/BBBC021_v1_moa.csv"] = body
        dest = tmp_path / kind / "BBBC021_v1_moa.csv"
        with pytest.raises(DownloadError, match="not valid"):
            fetch(
                f"{server.url}/{kind}/BBBC021_v1_moa.csv",
                dest,
                validate=lambda p: dataset.check_metadata_file("BBBC021_v1_moa.csv", p),
                **FAST,
            )
        assert not dest.exists() and not (tmp_path / kind / "BBBC021_v1_moa.csv.part").exists()
    good = b"compound,concentration,moa\ntaxol,1.0,Microtubule stabilizers\n"
    server.files["BBBC021_v1_moa.csv"] = good
    dest = fetch(
        f"{server.url}/BBBC021_v1_moa.csv",
        tmp_path / "BBBC021_v1_moa.csv",
        validate=lambda p: dataset.check_metadata_file("BBBC021_v1_moa.csv", p),
        **FAST,
    )
    assert dest.read_bytes() == good


def test_an_html_page_is_not_taken_for_an_archive(server, tmp_path):
    from cellmoa.data.archives import check_zip

    server.files["a.zip"] = b"<html><body>Not here</body></html>"
    with pytest.raises(DownloadError, match="HTML page"):
        fetch(f"{server.url}/a.zip", tmp_path / "a.zip", validate=check_zip, **FAST)
    assert not (tmp_path / "a.zip").exists()


# -- extraction policy ----------------------------------------------------------------------


def test_a_corrupt_deflate_stream_names_the_archive_and_member(tmp_path):
    good = tmp_path / "good.zip"
    payload = bytes(range(256)) * 4000
    with zipfile.ZipFile(good, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("plate/a.tif", payload)
    raw = bytearray(good.read_bytes())
    start = raw.index(b"plate/a.tif") + len("plate/a.tif")  # the local header's name, then the data
    for i in range(start + 50, start + 400):
        raw[i] ^= 0x5A
    bad = tmp_path / "bad.zip"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ArchiveError, match=r"bad\.zip: corrupt archive: member 'plate/a\.tif'"):
        extract_zip(bad, tmp_path / "out", strip_prefix="plate")
    assert not (tmp_path / "out").exists()


def test_only_listed_members_are_extracted_and_sizes_are_capped(tmp_path):
    archive = tmp_path / "p.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("plate/a.tif", b"x" * 100)
        zf.writestr("plate/huge.bin", b"\0" * (64 << 20))  # inflates to 64 MB, a few KB compressed
    files = extract_zip(
        archive,
        tmp_path / "out",
        strip_prefix="plate",
        expected=["a.tif"],
        max_member_bytes=1 << 20,
    )
    assert [f.name for f in files] == ["a.tif"] and not (tmp_path / "out" / "huge.bin").exists()
    with pytest.raises(ArchiveError, match="huge.bin.*ceiling"):
        extract_zip(archive, tmp_path / "out2", strip_prefix="plate", max_member_bytes=1 << 20)
    with pytest.raises(ArchiveError, match="ceiling of 1000 bytes per archive"):
        extract_zip(archive, tmp_path / "out3", strip_prefix="plate", max_archive_bytes=1000)
    assert not (tmp_path / "out2").exists() and not (tmp_path / "out3").exists()


def test_a_link_member_is_refused(tmp_path):
    archive = tmp_path / "p.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("plate/a.tif", b"x")
        link = zipfile.ZipInfo("plate/b.tif")
        link.external_attr = 0o120777 << 16
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(ArchiveError, match="link member 'plate/b.tif'"):
        extract_zip(archive, tmp_path / "out", strip_prefix="plate")
    assert not (tmp_path / "out").exists()


def test_missing_listed_files_are_allowed_only_when_skipping(tmp_path):
    archive = tmp_path / "p.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("plate/a.tif", b"x")
    with pytest.raises(ArchiveError, match="on_bad_image: skip"):
        extract_zip(archive, tmp_path / "out", strip_prefix="plate", expected=["a.tif", "b.tif"])
    files = extract_zip(
        archive,
        tmp_path / "out",
        strip_prefix="plate",
        expected=["a.tif", "b.tif"],
        allow_missing=True,
    )
    assert [f.name for f in files] == ["a.tif"]


def test_manifest_advice_fits_where_the_files_came_from(tmp_path):
    from cellmoa.data.manifests import RawDataError, verify_manifest, write_manifest

    folder = tmp_path / "plate"
    folder.mkdir()
    (folder / "a.tif").write_bytes(b"abc")
    manifest = tmp_path / "m.tsv"
    write_manifest(manifest, tmp_path, [folder / "a.tif"])
    (folder / "a.tif").write_bytes(b"abd")
    with pytest.raises(RawDataError, match="Delete .* and the manifest .* fetch them anew"):
        verify_manifest(manifest, tmp_path)
    with pytest.raises(
        RawDataError,
        match="your own files.*restore them.*delete only the manifest.*Do not delete the folder",
    ):
        verify_manifest(manifest, tmp_path, origin="raw_dir")
