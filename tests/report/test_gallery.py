"""Cell galleries (cellmoa.report.gallery)."""

import h5py
import numpy as np
import pandas as pd
import pytest

from cellmoa.report import gallery

pytestmark = pytest.mark.unit


def crops(tmp_path):
    """Two MoAs x two compounds x 6 crops, two controls; crop i's embedding is (i, 0)."""
    rows = []
    for moa, compounds in (("X", ("a", "b")), ("Y", ("c", "d"))):
        for c in compounds:
            rows += [
                {"compound": c, "concentration": 1.0, "moa": moa, "is_control": 0, "annotated": 1}
            ] * 6
    rows += [
        {"compound": "new", "concentration": 3.0, "moa": "", "is_control": 0, "annotated": 0}
    ] * 5
    rows += [
        {"compound": "DMSO", "concentration": 0.0, "moa": "DMSO", "is_control": 1, "annotated": 0}
    ] * 2
    metadata = pd.DataFrame(rows)
    embeddings = np.stack([np.arange(len(metadata), dtype=float), np.zeros(len(metadata))], 1)
    path = tmp_path / "all.h5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f["images"] = rng.normal(size=(len(metadata), 200, 250, 3)).astype(np.float16)
        f.attrs["channels"] = ["DAPI", "Tubulin", "Actin"]
    return metadata, embeddings, path


def test_typical_crops_are_those_nearest_the_median_embedding():
    embeddings = np.array([[0.0], [10.0], [11.0], [12.0], [100.0]])
    assert gallery.typical(np.arange(5), embeddings, k=2).tolist() == [2, 1]
    assert gallery.typical(np.array([4, 0]), embeddings, k=3).tolist() == [0, 4]


def test_channels_get_their_conventional_colours():
    assert gallery.colours_for(["Hoechst", "ConA", "Phalloidin"]) == [
        ("Hoechst", "blue"),
        ("ConA", "magenta"),
        ("Phalloidin", "red"),
    ]
    rgb = gallery.composite(
        np.array([[[[0.0, 5.0, 10.0]]]]), ["blue", "green", "red"], np.array([[0, 10]] * 3)
    )
    assert np.allclose(rgb[0, 0, 0], [1.0, 0.5, 0.0])  # red at its top, green half, no blue


def test_the_three_montages(tmp_path):
    metadata, embeddings, path = crops(tmp_path)
    moas = gallery.moa_rows(metadata, embeddings)
    assert [r.label for r in moas] == ["X", "Y"]
    assert gallery.typical(np.arange(12), embeddings).tolist() == moas[0].groups[0][1].tolist()
    treatments = pd.DataFrame(
        {
            "Metadata_Compound": ["a", "c"],
            "Metadata_Concentration": [1.0, 1.0],
            "Metadata_MoA": ["X", "Y"],
            "predicted_moa": ["Y", "Y"],
            "correct": [False, True],
        }
    )
    wrong = gallery.misclassified_rows(metadata, embeddings, treatments)
    assert len(wrong) == 1 and [c for c, _ in wrong[0].groups] == [
        "the treatment",
        "true: X",
        "called: Y",
    ]
    assert set(wrong[0].groups[0][1]) <= set(range(6))
    calls = pd.DataFrame(
        {
            "Metadata_Compound": ["new"],
            "Metadata_Concentration": [3.0],
            "top_moa": ["Y"],
            "novel": [True],
            "neighbour_1_compound": ["b"],
            "neighbour_1_concentration": [1.0],
        }
    )
    new = gallery.unannotated_rows(metadata, embeddings, calls)
    assert [c for c, _ in new[0].groups] == ["the treatment (novel)", "nearest: b 1", "top MoA: Y"]
    assert set(new[0].groups[0][1]) <= set(range(24, 29))
    for name, rows in (("moas", moas), ("wrong", wrong), ("new", new), ("none", [])):
        out = tmp_path / f"{name}.png"
        gallery.draw(rows, path, name, out)
        assert out.read_bytes()[:4] == b"\x89PNG" and out.stat().st_size < 2_000_000
