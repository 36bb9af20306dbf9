"""`cellmoa evaluate-profiles` on a profile table in pycytominer's layout (synthesised here)."""

import numpy as np
import pandas as pd
import pytest

from cellmoa.cli import main
from cellmoa.files import read_tsv

pytestmark = pytest.mark.unit

FEATURES = [
    "Cells_AreaShape_Area",
    "Cells_Intensity_MeanIntensity_DNA",
    "Nuclei_Texture_Contrast_DNA_3_0",
    "Cytoplasm_Granularity_1_Actin",
    "Cells_RadialDistribution_FracAtD_Tubulin_1of4",
]


def pycytominer_table(seed=0) -> pd.DataFrame:
    """Well-level profiles as pycytominer writes them: Metadata_Plate, Metadata_Well,
    Metadata_broad_sample, Metadata_mmoles_per_liter, Metadata_moa, CellProfiler feature names;
    DMSO wells on every plate; three MoAs of two compounds each, two plates (batches) per MoA
    pair."""
    rng = np.random.default_rng(seed)
    centres = {
        "tubulin": rng.normal(size=5) * 4,
        "dna": rng.normal(size=5) * 4,
        "actin": rng.normal(size=5) * 4,
    }
    rows = []
    for plate, batch in [("P1", "B1"), ("P2", "B2")]:
        for w in range(4):
            rows.append(
                {
                    "Metadata_Plate": plate,
                    "Metadata_Batch_Name": batch,
                    "Metadata_Well": f"A{w + 1:02d}",
                    "Metadata_broad_sample": "DMSO",
                    "Metadata_mmoles_per_liter": "0",
                    "Metadata_moa": np.nan,
                    **dict(zip(FEATURES, rng.normal(size=5))),
                }
            )
        for moa, centre in centres.items():
            for c in range(2):
                compound = f"BRD-{moa}-{c}-{batch}"
                for dose in ("0.3", "1.000000"):
                    for rep in range(2):
                        rows.append(
                            {
                                "Metadata_Plate": plate,
                                "Metadata_Batch_Name": batch,
                                "Metadata_Well": f"{'BCD'[c]}{rep + 1:02d}",
                                "Metadata_broad_sample": compound,
                                "Metadata_mmoles_per_liter": dose,
                                "Metadata_moa": moa,
                                **dict(zip(FEATURES, centre + rng.normal(size=5))),
                            }
                        )
    return pd.DataFrame(rows)


RENAMES = [
    "--rename",
    "Metadata_broad_sample=Metadata_Compound",
    "--rename",
    "Metadata_mmoles_per_liter=Metadata_Concentration",
    "--rename",
    "Metadata_moa=Metadata_MoA",
]


@pytest.mark.parametrize("suffix", [".csv.gz", ".parquet"])
def test_evaluate_profiles_on_a_pycytominer_table(tmp_path, capsys, suffix):
    path = tmp_path / f"profiles{suffix}"
    table = pycytominer_table()
    table.to_parquet(path) if suffix == ".parquet" else table.to_csv(path, index=False)
    out = tmp_path / "out"
    code = main(
        [
            "evaluate-profiles",
            str(path),
            "--control",
            "DMSO",
            "--batch-column",
            "Metadata_Batch_Name",
            *RENAMES,
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    for name in ("profiles", "matches", "average_precision", "map_by_moa", "summary"):
        assert (out / f"{name}.tsv").is_file(), name
    summary = read_tsv(out / "summary.tsv").set_index("Metadata_MatchScheme")
    # 3 MoAs x 2 compounds x 2 batches x 2 doses ('0.3' and '1.000000' parsed as numbers); no DMSO
    assert summary.loc["nsc", "n_treatments"] == 24 and summary.loc["nsc", "n"] == 24
    assert summary.loc["nsc", "accuracy"] == 1.0 and summary.loc["nscb", "accuracy"] == 1.0
    assert (
        0.9 < summary.loc["nsc", "mean_average_precision"] <= 1.0
        and summary.loc["nsc", "n_map"] == 24
    )
    assert summary.loc["nsc", "exact_ci_low"] < 1.0
    profiles = read_tsv(out / "profiles.tsv")
    assert "DMSO" not in set(profiles["Metadata_Compound"])
    assert "nsc" in printed and "1-NN accuracy" in printed


def test_evaluate_profiles_names_what_is_missing(tmp_path, capsys):
    path = tmp_path / "profiles.csv"
    pycytominer_table().to_csv(path, index=False)
    # pycytominer's names are not guessed: without the mapping the columns are named as missing
    assert main(["evaluate-profiles", str(path), "--out", str(tmp_path / "o")]) == 1
    assert "Metadata_Compound" in capsys.readouterr().err
    # the MoA of DMSO wells is empty: without --control that is an error naming the rows
    assert (
        main(
            [
                "evaluate-profiles",
                str(path),
                *RENAMES,
                "--scheme",
                "nsc",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 1
    )
    assert "Metadata_MoA is empty or missing in 8" in capsys.readouterr().err
    # nscb without a batch column
    assert (
        main(
            [
                "evaluate-profiles",
                str(path),
                *RENAMES,
                "--control",
                "DMSO",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 1
    )
    assert "Metadata_Batch" in capsys.readouterr().err


def test_evaluate_profiles_with_a_postprocessing_chain(tmp_path, capsys):
    path = tmp_path / "profiles.csv"
    pycytominer_table().to_csv(path, index=False)
    chain = tmp_path / "chain.yaml"
    chain.write_text(
        "postprocess:\n  - {step: normalize, method: mad_robustize, by: batch}\n"
        "  - {step: feature_select, operations: [variance_threshold]}\n"
    )
    out = tmp_path / "out"
    code = main(
        [
            "evaluate-profiles",
            str(path),
            *RENAMES,
            "--control",
            "DMSO",
            "--batch-column",
            "Metadata_Batch_Name",
            "--postprocess",
            str(chain),
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    notes = read_tsv(out / "postprocessing.tsv")
    assert notes["step"].tolist() == ["normalize", "feature_select"]
    assert "mad_robustize by batch on controls" in printed
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {step: spherise}\n")
    assert (
        main(
            [
                "evaluate-profiles",
                str(path),
                *RENAMES,
                "--control",
                "DMSO",
                "--postprocess",
                str(bad),
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "unknown step 'spherise'" in capsys.readouterr().err
