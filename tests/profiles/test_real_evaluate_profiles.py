"""`cellmoa evaluate-profiles` on the real BBBC021 CellProfiler well profiles (Ljosa et al. 2013).

The table has only plate and well columns: the plate map (BBBC021_v1_image.csv, one row per
field) and the MoA table (BBBC021_v1_moa.csv, keyed on compound and concentration) annotate it,
the batch is the plate name's week, and the post-processing chain is the default one
(``cellprofiler``). Reads ``../shared`` and skips with the reason where it is absent.
"""

import pytest

from cellmoa.cli import main
from cellmoa.files import read_tsv
from tests.helpers.paths import ROOT, SHARED_BBBC021

pytestmark = pytest.mark.unit

TABLE = ROOT.parent / "shared" / "profiles" / "ljosa_jbiomolscreen_2013_per_well_mean.csv.gz"
PLATEMAP = SHARED_BBBC021 / "BBBC021_v1_image.csv"
MOAS = SHARED_BBBC021 / "BBBC021_v1_moa.csv"
MISSING = [str(p) for p in (TABLE, PLATEMAP, MOAS) if not p.is_file()]


@pytest.mark.skipif(
    bool(MISSING),
    reason=f"the real BBBC021 profiles are not beside the repository: {', '.join(MISSING)} "
    "absent (CI has ../shared)",
)
def test_the_real_cellprofiler_table_scores_with_the_default_chain(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        [
            "evaluate-profiles",
            str(TABLE),
            "--rename",
            "Image_Metadata_Plate=Metadata_Plate",
            "--rename",
            "Image_Metadata_Well=Metadata_Well",
            "--platemap",
            str(PLATEMAP),
            "--platemap-rename",
            "Image_Metadata_Plate_DAPI=Metadata_Plate",
            "--platemap-rename",
            "Image_Metadata_Well_DAPI=Metadata_Well",
            "--platemap-rename",
            "Image_Metadata_Compound=Metadata_Compound",
            "--platemap-rename",
            "Image_Metadata_Concentration=Metadata_Concentration",
            "--moas",
            str(MOAS),
            "--moas-rename",
            "compound=Metadata_Compound",
            "--moas-rename",
            "concentration=Metadata_Concentration",
            "--moas-rename",
            "moa=Metadata_MoA",
            "--batch-from-plate",
            "Week[0-9]+",
            "--control",
            "DMSO",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "post-processing chain: cellprofiler: " in printed
    assert f"all 632 rows joined to their well in the plate map {PLATEMAP}" in printed
    assert "632 of 632 rows annotated, 330 of them DMSO rows; every treatment has an MoA" in printed
    summary = read_tsv(out / "summary.tsv").set_index("Metadata_MatchScheme")
    nsc, nscb = summary.loc["nsc"], summary.loc["nscb"]
    assert (nsc["n_treatments"], nsc["n"], nscb["n"]) == (103, 103, 92)
    assert nsc["n_correct"] >= 95, f"NSC {nsc['n_correct']}/103"
    assert nscb["n_correct"] >= 78, f"NSCB {nscb['n_correct']}/92"
    profiles = read_tsv(out / "profiles.tsv")
    assert len(set(";".join(profiles["Metadata_Batch"]).split(";"))) == 10
