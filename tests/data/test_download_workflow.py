"""The download stage inside Snakemake, against an HTTP server on 127.0.0.1 the test starts:
per-plate jobs, manifests, no network on a rerun, changed files detected, data already on disk."""

import shutil

import pytest
import yaml

from cellmoa.data.datasets import BBBC021
from cellmoa.data.http import join_url
from cellmoa.data.manifests import read_manifest, sha256sum
from tests.helpers.httpserver import ScriptedServer
from tests.helpers.paths import ROOT
from tests.helpers.smk import snakemake
from tests.helpers.specs import tiny_spec

DS = BBBC021()


@pytest.mark.unit
def test_real_urls_are_bbbc021s():
    assert join_url(BBBC021.base_url, DS.archive_name("Week1_22123")) == (
        "https://data.broadinstitute.org/bbbc/BBBC021/BBBC021_v1_images_Week1_22123.zip"
    )
    assert join_url(BBBC021.base_url, "BBBC021_v1_image.csv").endswith(
        "/BBBC021/BBBC021_v1_image.csv"
    )
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    assert config["data"]["base_url"] == BBBC021.base_url


def _config(work, on_bad_image=None, **data):
    spec = tiny_spec()
    config = {
        "dataset": "bbbc021",
        "data": {"plates": spec.plates(), "retries": 1, "timeout": 10, **data},
        "training": {
            "networks": ["ResNet50"],
            "folds": {"compounds": spec.compounds},
            "weights": "none",
        },
    }
    if on_bad_image:
        config["preprocessing"] = {"normalization": {"on_bad_image": on_bad_image}}
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.workflow
def test_download_manifests_and_a_rerun_without_network(tmp_path, tiny_dataset):
    spec, source = tiny_dataset
    with ScriptedServer() as server:
        for f in source.iterdir():
            server.files[f.name] = f.read_bytes()
        server.behaviour[DS.archive_name(spec.plates()[1])] = "drop"  # one archive drops mid-body
        config = _config(tmp_path, base_url=server.url)
        targets = [f"resources/bbbc021/manifests/{p}.tsv" for p in spec.plates()]
        snakemake("--cores", "2", "--directory", str(tmp_path), f"--configfile={config}", *targets)
        first = len(server.requests)
        assert first >= len(spec.plates()) + 3
        again = snakemake(
            "--cores", "2", "--directory", str(tmp_path), f"--configfile={config}", *targets
        )
        assert len(server.requests) == first, "a rerun after a completed download made a request"
        assert "Nothing to be done" in again.stdout + again.stderr
    images = tmp_path / "resources/bbbc021/images"
    for plate in spec.plates():
        rows = read_manifest(tmp_path / f"resources/bbbc021/manifests/{plate}.tsv")
        expected = DS.plate_files(DS.read_metadata(source), plate)
        assert sorted(r["path"] for r in rows) == sorted(f"{plate}/{name}" for name in expected)
        for r in rows[:3]:
            assert sha256sum(images / r["path"]) == r["sha256"]
            assert r["source"].startswith(f"{server.url}/{DS.archive_name(plate)}#sha256=")
    assert not (tmp_path / "resources/bbbc021/archives" / f"{spec.plates()[0]}.zip").exists()
    assert (tmp_path / "logs/download" / f"{spec.plates()[0]}.log").is_file()
    meta_rows = read_manifest(tmp_path / "resources/bbbc021/manifests/metadata.tsv")
    assert {r["path"] for r in meta_rows} == set(DS.metadata_files())

    # a file changed after the download is caught before it is used
    plate = spec.plates()[0]
    victim = (
        images / read_manifest(tmp_path / f"resources/bbbc021/manifests/{plate}.tsv")[0]["path"]
    )
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF
    victim.write_bytes(bytes(data))
    proc = snakemake(
        "--cores",
        "1",
        "--directory",
        str(tmp_path),
        f"--configfile={config}",
        f"results/illumination/{plate}.h5",
        check=False,
    )
    assert proc.returncode != 0
    log = (tmp_path / f"logs/illumination/{plate}.log").read_text()
    assert "differ from the manifest" in log and victim.name in log and "changed content" in log
    assert not (tmp_path / f"results/illumination/{plate}.h5").exists()


@pytest.mark.workflow
def test_a_missing_archive_fails_clearly_and_leaves_nothing(tmp_path, tiny_dataset):
    spec, source = tiny_dataset
    with ScriptedServer() as server:
        for f in source.iterdir():
            server.files[f.name] = f.read_bytes()
        server.behaviour[DS.archive_name(spec.plates()[0])] = "404"
        config = _config(tmp_path, base_url=server.url)
        proc = snakemake(
            "--cores",
            "1",
            "--directory",
            str(tmp_path),
            f"--configfile={config}",
            f"resources/bbbc021/manifests/{spec.plates()[0]}.tsv",
            check=False,
        )
    assert proc.returncode != 0
    log = (tmp_path / f"logs/download/{spec.plates()[0]}.log").read_text()
    assert f"{DS.archive_name(spec.plates()[0])}: HTTP 404" in log
    assert not (tmp_path / "resources/bbbc021/images" / spec.plates()[0]).exists()


@pytest.mark.workflow
def test_plates_already_on_disk_are_checked_not_downloaded(tmp_path, tiny_raw):
    spec, raw = tiny_raw
    local = tmp_path / "mydata"
    shutil.copytree(raw, local)
    # one plate in BBBC021's week layout (<raw_dir>/Week1/Week1_xxxxx), the others flat
    moved = spec.plates()[0]
    (local / DS.batch_of(moved)).mkdir()
    shutil.move(str(local / moved), str(local / DS.batch_of(moved) / moved))
    work = tmp_path / "work"
    work.mkdir()
    config = _config(work, base_url=str(local), raw_dir=str(local))
    targets = [f"results/illumination/{p}.h5" for p in spec.plates()]
    snakemake("--cores", "2", "--directory", str(work), f"--configfile={config}", *targets)
    assert not (work / "resources/bbbc021/images").exists(), "nothing was downloaded"
    rows = read_manifest(work / f"resources/bbbc021/manifests/raw/{moved}.tsv")
    assert rows and all(r["path"].startswith(f"{moved}/") for r in rows)
    for p in spec.plates():
        assert (work / f"results/illumination/{p}.h5").is_file()

    # a plate missing a listed TIFF is refused by the same completeness check as a download
    victim = next((local / spec.plates()[1]).iterdir())
    victim.unlink()
    shutil.rmtree(work / "resources/bbbc021/manifests/raw")
    proc = snakemake(
        "--cores",
        "1",
        "--directory",
        str(work),
        f"--configfile={config}",
        f"resources/bbbc021/manifests/raw/{spec.plates()[1]}.tsv",
        check=False,
    )
    assert proc.returncode != 0
    log = (work / f"logs/download/{spec.plates()[1]}.check.log").read_text()
    assert "1 file(s) listed in the metadata are missing" in log and victim.name in log
    assert (
        "RawDataError" in log
        and "restore them, or set preprocessing.normalization.on_bad_image: skip" in log
    )

    # under on_bad_image: skip the partial plate goes through: its field is skipped and listed
    config = _config(work, on_bad_image="skip", base_url=str(local), raw_dir=str(local))
    snakemake(
        "--cores",
        "2",
        "--directory",
        str(work),
        f"--configfile={config}",
        f"results/tensors/{spec.plates()[1]}.h5",
    )
    skipped = (work / f"results/tensors/{spec.plates()[1]}.skipped.tsv").read_text()
    assert victim.name in skipped or victim.name.split("_w")[0] in skipped, skipped
    rows = read_manifest(work / f"resources/bbbc021/manifests/raw/{spec.plates()[1]}.tsv")
    assert victim.name not in {r["path"].split("/")[-1] for r in rows}


@pytest.mark.workflow
def test_a_rejected_archive_does_not_stay_under_its_name(tmp_path, tiny_dataset):
    """An archive that opens but lacks a listed image is refused by extract_plate and deleted,
    so the next run fetches it again instead of failing on the same file (issue 18)."""
    import io
    import zipfile

    spec, source = tiny_dataset
    plate = spec.plates()[0]
    name = DS.archive_name(plate)
    buffer = io.BytesIO()
    with zipfile.ZipFile(source / name) as full, zipfile.ZipFile(buffer, "w") as cut:
        members = [m for m in full.infolist() if not m.is_dir()]
        for m in members[1:]:  # the first listed TIFF is missing
            cut.writestr(m, full.read(m))
    with ScriptedServer() as server:
        for f in source.iterdir():
            server.files[f.name] = f.read_bytes()
        server.files[name] = buffer.getvalue()
        config = _config(tmp_path, base_url=server.url, keep_archives=True)
        proc = snakemake(
            "--cores",
            "1",
            "--directory",
            str(tmp_path),
            f"--configfile={config}",
            f"resources/bbbc021/manifests/{plate}.tsv",
            check=False,
        )
    assert proc.returncode != 0
    log = (tmp_path / f"logs/download/{plate}.extract.log").read_text()
    assert "listed in the metadata are missing" in log and "the archive was deleted" in log
    assert not (tmp_path / f"resources/bbbc021/archives/{plate}.zip").exists()
    assert not (tmp_path / f"resources/bbbc021/images/{plate}").exists()
