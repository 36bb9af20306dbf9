"""`cellmoa predict-profiles` on the real BBBC021 CellProfiler well profiles, one MoA hidden.

The Eg5 inhibitors' rows are left out of the MoA table (written to the test's own folder), so
their 12 treatments are the unannotated ones to call: an MoA no annotated compound has, which the
novelty rule should flag. Reads ``../shared`` and skips with the reason where it is absent.
"""

import csv

import pytest

from cellmoa.cli import main
from cellmoa.files import read_tsv
from tests.helpers.paths import ROOT, SHARED_BBBC021

pytestmark = pytest.mark.unit

TABLE = ROOT.parent / "shared" / "profiles" / "ljosa_jbiomolscreen_2013_per_well_mean.csv.gz"
PLATEMAP = SHARED_BBBC021 / "BBBC021_v1_image.csv"
MOAS = SHARED_BBBC021 / "BBBC021_v1_moa.csv"
MISSING = [str(p) for p in (TABLE, PLATEMAP, MOAS) if not p.is_file()]
HIDDEN = "Eg5 inhibitors"


@pytest.mark.skipif(
    bool(MISSING),
    reason=f"the real BBBC021 profiles are not beside the repository: {', '.join(MISSING)} "
    "absent (CI has ../shared)",
)
def test_an_moa_hidden_from_the_real_table_is_called_novel(tmp_path, capsys):
    with MOAS.open(newline="") as f:
        rows = list(csv.DictReader(f))
    kept = [r for r in rows if r["moa"] != HIDDEN]
    hidden = {r["compound"] for r in rows if r["moa"] == HIDDEN}
    moas = tmp_path / "moas_without_eg5.csv"
    with moas.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(kept)
    out = tmp_path / "out"
    code = main(
        [
            "predict-profiles",
            str(TABLE),
            *("--rename", "Image_Metadata_Plate=Metadata_Plate"),
            *("--rename", "Image_Metadata_Well=Metadata_Well"),
            *("--platemap", str(PLATEMAP)),
            *("--platemap-rename", "Image_Metadata_Plate_DAPI=Metadata_Plate"),
            *("--platemap-rename", "Image_Metadata_Well_DAPI=Metadata_Well"),
            *("--platemap-rename", "Image_Metadata_Compound=Metadata_Compound"),
            *("--platemap-rename", "Image_Metadata_Concentration=Metadata_Concentration"),
            *("--moas", str(moas)),
            *("--moas-rename", "compound=Metadata_Compound"),
            *("--moas-rename", "concentration=Metadata_Concentration"),
            *("--moas-rename", "moa=Metadata_MoA"),
            *("--batch-from-plate", "Week[0-9]+"),
            *("--control", "DMSO"),
            *("--out", str(out)),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "post-processing chain: cellprofiler: " in printed
    predictions = read_tsv(out / "predictions.tsv")
    assert len(predictions) == 12
    assert set(predictions["Metadata_Compound"]) == hidden
    assert HIDDEN not in set(predictions["top_moa"])
    # measured: all 12 flagged (docs/benchmarks.md); the p-value rule alone flags a known
    # MoA's treatment about 1 time in 10
    assert predictions["novel"].sum() >= 10, predictions[["Metadata_Compound", "novel_reason"]]
    calibration = read_tsv(out / "calibration.tsv").set_index("nominal_coverage")
    assert calibration.loc[0.9, "configured"]
    assert 0.85 <= calibration.loc[0.9, "compound_coverage"] <= 1.0
    assert calibration.loc[0.9, "n_treatments"] == 91
    annotated = read_tsv(out / "annotated.tsv")
    assert annotated["correct"].mean() >= 0.9
    check = read_tsv(out / "novelty_by_moa.tsv").set_index("hidden_moa")
    assert check.loc["(pooled)", "auroc"] >= 0.9
    assert check.loc["(pooled)", "auroc"] > check.loc["(pooled)", "auroc_nearest"]
    assert len(read_tsv(out / "without_moa.tsv")) == 12
