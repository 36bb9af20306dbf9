"""`cellmoa evaluate-profiles` on a profile table in pycytominer's layout (synthesised here)."""

import numpy as np
import pandas as pd
import pytest

from cellmoa.cli import main
from cellmoa.files import read_tsv
from cellmoa.profiles.chains import CHAINS

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
            "--postprocess",
            "none",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "post-processing chain: none" in printed
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
    raw = ["--postprocess", "none"]
    assert main(["evaluate-profiles", str(path), *raw, "--out", str(tmp_path / "o")]) == 1
    assert "Metadata_Compound" in capsys.readouterr().err
    # the MoA of DMSO wells is empty: without --control that is an error naming the rows
    assert (
        main(
            [
                "evaluate-profiles",
                str(path),
                *RENAMES,
                *raw,
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
                *raw,
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


def test_evaluate_profiles_runs_the_cellprofiler_chain_by_default(tmp_path, capsys):
    path = tmp_path / "profiles.csv"
    pycytominer_table().to_csv(path, index=False)
    out = tmp_path / "out"
    args = [str(path), *RENAMES, "--control", "DMSO", "--batch-column", "Metadata_Batch_Name"]
    assert main(["evaluate-profiles", *args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    chain = "post-processing chain: cellprofiler: normalize(method=mad_robustize"
    assert chain in printed
    # printed before the results
    assert printed.index(chain) < printed.index("1-NN accuracy")
    notes = read_tsv(out / "postprocessing.tsv")
    assert notes["step"].tolist() == [step["step"] for step in CHAINS["cellprofiler"]]
    # the named chains by name; an unknown name is refused with the known ones
    assert (
        main(["evaluate-profiles", *args, "--postprocess", "cellprofiler", "--out", str(out)]) == 0
    )
    assert chain in capsys.readouterr().out
    assert (
        main(["evaluate-profiles", *args, "--postprocess", "cellprofilr", "--out", str(out)]) == 2
    )
    err = capsys.readouterr().err
    assert "unknown chain 'cellprofilr'" in err and "cellprofiler" in err


def split_screen(tmp_path, seed=0):
    """A well table with only plate, well and features (wells spelled B1), its plate map with
    three identical rows per well (one per field; wells spelled B01) and its MoA table (keyed on
    compound and dose, CellProfiler's and BBBC021's column names); DMSO has no MoA row, and the
    compound 'mystery' none either."""
    rng = np.random.default_rng(seed)
    centres = [rng.normal(size=5) * 4 for _ in range(3)]
    wells, fields, moas = [], [], []
    for plate, week in [("Week1_100", "Week1"), ("Week2_200", "Week2")]:
        treatments = [("DMSO", 0.0, f"A{w + 1}", np.zeros(5)) for w in range(4)]
        treatments += [("mystery", 1.0, f"H{r + 1}", np.zeros(5)) for r in range(2)]
        for m, centre in enumerate(centres):
            for c in range(2):
                compound = f"cpd{m}{c}-{week}"
                for d, dose in enumerate((0.3, 1.0)):
                    moas.append({"compound": compound, "concentration": f"{dose:f}", "moa": m})
                    for r in range(2):
                        well = f"{'BCDEFG'[m * 2 + c]}{d * 2 + r + 1}"
                        treatments.append((compound, dose, well, centre))
        for compound, dose, well, centre in treatments:
            features = centre + rng.normal(size=5)
            wells.append({"Image_Metadata_Plate": plate, "Image_Metadata_Well": well})
            wells[-1].update({f"Cells_F{i}": v for i, v in enumerate(features)})
            for _ in range(3):
                fields.append(
                    {
                        "Image_Metadata_Plate_DAPI": plate,
                        "Image_Metadata_Well_DAPI": f"{well[0]}{int(well[1:]):02d}",
                        "Image_Metadata_Compound": compound,
                        "Image_Metadata_Concentration": dose,
                    }
                )
    paths = [tmp_path / "wells.csv", tmp_path / "image.csv", tmp_path / "moa.csv"]
    for frame, p in zip((wells, fields, moas), paths):
        pd.DataFrame(frame).to_csv(p, index=False)
    return paths


JOIN_RENAMES = [
    "--rename",
    "Image_Metadata_Plate=Metadata_Plate",
    "--rename",
    "Image_Metadata_Well=Metadata_Well",
    "--platemap-rename",
    "Image_Metadata_Plate_DAPI=Metadata_Plate",
    "--platemap-rename",
    "Image_Metadata_Well_DAPI=Metadata_Well",
    "--platemap-rename",
    "Image_Metadata_Compound=Metadata_Compound",
    "--platemap-rename",
    "Image_Metadata_Concentration=Metadata_Concentration",
    "--moas-rename",
    "compound=Metadata_Compound",
    "--moas-rename",
    "concentration=Metadata_Concentration",
    "--moas-rename",
    "moa=Metadata_MoA",
]


def test_evaluate_profiles_joins_a_plate_map_and_a_moa_table(tmp_path, capsys):
    wells, platemap, moas = split_screen(tmp_path)
    out = tmp_path / "out"
    code = main(
        [
            "evaluate-profiles",
            str(wells),
            "--platemap",
            str(platemap),
            "--moas",
            str(moas),
            *JOIN_RENAMES,
            "--batch-from-plate",
            "Week[0-9]+",
            "--control",
            "DMSO",
            "--postprocess",
            "none",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert f"all 60 rows joined to their well in the plate map {platemap}" in printed
    assert "56 of 60 rows annotated, 8 of them DMSO rows" in printed
    assert "1 treatment(s) (4 rows) have no row in the MoA table" in printed
    assert "mystery 1 (line 6)" in printed
    unannotated = read_tsv(out / "without_moa.tsv")
    assert unannotated[["Metadata_Compound", "n_rows", "plates"]].values.tolist() == [
        ["mystery", 4, "Week1_100;Week2_200"]
    ]
    summary = read_tsv(out / "summary.tsv").set_index("Metadata_MatchScheme")
    # 3 MoAs x 2 compounds x 2 batches x 2 doses; DMSO and the unannotated compound not scored
    assert summary.loc["nsc", "n_treatments"] == 24
    assert summary.loc["nsc", "accuracy"] == 1.0 and summary.loc["nscb", "accuracy"] == 1.0
    profiles = read_tsv(out / "profiles.tsv")
    assert set(profiles["Metadata_Batch"]) == {"Week1", "Week2"}
    assert "mystery" not in set(profiles["Metadata_Compound"])


def test_evaluate_profiles_join_errors_name_file_and_line(tmp_path, capsys):
    wells, platemap, moas = split_screen(tmp_path)
    table = pd.read_csv(wells)
    table.assign(
        Image_Metadata_Well=table["Image_Metadata_Well"].mask(table.index == 2, "P9")
    ).to_csv(wells, index=False)
    args = [str(wells), "--platemap", str(platemap), "--moas", str(moas), *JOIN_RENAMES]
    out = ["--control", "DMSO", "--out", str(tmp_path / "o")]
    assert main(["evaluate-profiles", *args, "--batch-from-plate", "Week[0-9]+", *out]) == 1
    err = capsys.readouterr().err
    assert f"{wells}: 1 of 60 rows (1 well(s)) have no row in the plate map {platemap}" in err
    assert "line 4 (plate Week1_100, well P09)" in err
    # a pattern that does not match a plate
    table.to_csv(wells, index=False)
    assert main(["evaluate-profiles", *args, "--batch-from-plate", "Week1", *out]) == 1
    assert "does not match 1 plate name(s): Week2_200" in capsys.readouterr().err
    # one batch source only
    both = ["--batch-from-plate", "Week[0-9]+", "--batch-column", "Image_Metadata_Plate"]
    assert main(["evaluate-profiles", *args, *both, *out]) == 2
    assert "not both" in capsys.readouterr().err
