import hashlib
import io
import re
import zipfile

import numpy as np
import pandas as pd
import pytest
import tifffile
from conftest import tiny_spec

from cellmoa.datasets import BBBC021
from cellmoa.synthetic.bbbc021 import SyntheticSpec, apply_dose, compound_phenotype, dose_strength, render_field, synthesize

NAME_RE = re.compile(r"^(Week\d+_\d{6}_)?[B-G]\d{2}_s\d+_w[124][0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}\.tif$")


def test_layout_is_bbbc021s(tiny_dataset):
    spec, source = tiny_dataset
    plates = spec.plates()
    assert all(re.fullmatch(r"Week\d+_\d{5}", p) for p in plates)
    images = pd.read_csv(source / "BBBC021_v1_image.csv")
    assert sorted(images["Image_Metadata_Plate_DAPI"].unique()) == sorted(plates)
    for plate in plates:
        with zipfile.ZipFile(source / BBBC021().archive_name(plate)) as zf:
            names = zf.namelist()
            assert all(n.startswith(plate + "/") for n in names)
            for n in names:
                assert NAME_RE.match(n.split("/", 1)[1]), n
            img = tifffile.imread(io.BytesIO(zf.read(names[0])))
            assert img.dtype == np.uint16
            assert img.shape == (spec.image_height, spec.image_width)
            assert np.all(img % 16 == 0), "12-bit data in 16-bit containers: multiples of 16"
    row = images.iloc[0]
    week = row["TableNumber"]
    assert row["Image_PathName_DAPI"] == f"Week{week}/{row['Image_Metadata_Plate_DAPI']}"
    moa = (source / "BBBC021_v1_moa.csv").read_text().splitlines()
    assert moa[0] == '"compound",concentration,"moa"'
    assert '"nocodazole",0.300000,"Microtubule destabilizers"' in moa


def test_every_plate_has_dmso_and_replicates_follow_plates(tiny_dataset):
    spec, source = tiny_dataset
    meta = BBBC021().read_metadata(source)
    for _plate, rows in meta.groupby("plate"):
        assert (rows["compound"] == "DMSO").sum() >= spec.dmso_wells_per_plate
        assert rows["replicate"].nunique() == 1
    labelled = BBBC021().labelled(meta)
    assert (labelled.groupby(["compound", "concentration"])["replicate"].nunique() == spec.plates_per_week).all()


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def test_deterministic_for_a_seed(tmp_path):
    spec = tiny_spec(weeks=1, plates_per_week=1, image_height=48, image_width=64)
    a = synthesize(spec, tmp_path / "a")
    b = synthesize(spec, tmp_path / "b")
    c = synthesize(tiny_spec(seed=99, weeks=1, plates_per_week=1, image_height=48, image_width=64), tmp_path / "c")
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_moa_signal_and_dose_effect():
    spec = tiny_spec(image_height=128, image_width=128)

    def nuclear_area(compound, moa, conc):
        pheno = apply_dose(compound_phenotype(spec, moa, compound), dose_strength(conc, spec.concentrations))
        rng = np.random.default_rng(0)
        fields = [render_field(rng, spec, pheno)["DAPI"] for _ in range(6)]
        n_cells = spec.cells_per_field * pheno["density"]
        return np.mean([(f > 0.3).sum() for f in fields]) / n_cells, pheno

    low_area, low = nuclear_area("etoposide", "DNA damage", 0.3)
    high_area, high = nuclear_area("etoposide", "DNA damage", 3.0)
    # DNA damage enlarges nuclei, and the rendered images show it; the higher dose more so
    assert high["nucleus_size"] > low["nucleus_size"] > 1.0
    assert high_area > low_area
    # compounds of one MoA differ, but less than the MoA differs from another
    a = compound_phenotype(spec, "DNA damage", "etoposide")
    b = compound_phenotype(spec, "DNA damage", "mitomycin C")
    c = compound_phenotype(spec, "Actin disruptors", "cytochalasin B")
    la, lb, lc = (np.log(list(x.values())) for x in (a, b, c))
    assert 0 < np.linalg.norm(la - lb) < np.linalg.norm(la - lc)


def test_illumination_truth_saved(tiny_dataset):
    spec, source = tiny_dataset
    truth = np.load(source / "illumination_truth.npz")
    for plate in spec.plates():
        for channel in BBBC021.channels:
            field = truth[f"{plate}/{channel}"]
            assert field.shape == (spec.image_height, spec.image_width)
            assert field.max() == pytest.approx(1.0)
            assert 1.0 / field.min() == pytest.approx(spec.illumination_falloff, rel=0.35)


def test_unknown_parameter_is_named():
    with pytest.raises(ValueError, match="cells_per_well"):
        SyntheticSpec.from_dict({"cells_per_well": 3})
