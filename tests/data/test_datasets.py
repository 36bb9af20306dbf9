import pandas as pd
import pytest
import yaml

from cellmoa.data.datasets import BBBC021, get_dataset
from cellmoa.data.datasets.bbbc021 import IMAGE_COLUMNS, IMAGE_CSV, MOA_CSV, concentration_key
from cellmoa.preprocess.plates import restrict
from cellmoa.train.folds import fold_slug, fold_slugs
from tests.helpers.paths import ROOT

pytestmark = pytest.mark.unit


def test_fold_slugs_are_safe_and_unique():
    assert fold_slug("mevinolin/lovastatin") == "mevinolin-lovastatin"
    assert fold_slug("epothilone B") == "epothilone-b"
    assert fold_slug("AZ-A") == "az-a"
    with pytest.raises(ValueError, match="both give the fold name"):
        fold_slugs(["AZ-A", "AZ A"])
    with pytest.raises(ValueError):
        fold_slug("///")


def test_unknown_dataset_is_named():
    with pytest.raises(ValueError, match="bbbc099"):
        get_dataset("bbbc099")


def test_concentrations_join_on_parsed_floats():
    assert list(concentration_key(["0.3", "0.300000", 3e-3])) == [0.3, 0.3, 0.003]


def test_synthetic_metadata_joins(tiny_raw):
    spec, raw = tiny_raw
    meta = BBBC021().read_metadata(raw)
    labelled = BBBC021().labelled(meta)
    assert set(labelled["compound"]) == set(spec.compounds)
    assert (meta.loc[meta.compound == "AZ-U1", "moa"] == "").all()
    assert (meta.loc[meta.compound == "DMSO", "moa"] == "DMSO").all()
    for channel in BBBC021.channels:
        for rel in meta[f"file_{channel}"]:
            assert (raw / rel).is_file(), rel


def test_missing_column_is_named(tmp_path, tiny_raw):
    _, raw = tiny_raw
    images = pd.read_csv(raw / IMAGE_CSV).drop(columns=["Replicate"])
    images.to_csv(tmp_path / IMAGE_CSV, index=False)
    (tmp_path / MOA_CSV).write_text((raw / MOA_CSV).read_text())
    with pytest.raises(ValueError, match="Replicate"):
        BBBC021().read_metadata(tmp_path)


def test_missing_metadata_file_says_how_to_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="download_metadata"):
        BBBC021().read_metadata(tmp_path)


# --- the real BBBC021 metadata (read from ../shared/bbbc021, never copied into the repo) ---


def test_real_metadata_matches_published_facts(real_metadata_dir):
    meta = BBBC021().read_metadata(real_metadata_dir)
    assert len(meta) == 13200
    assert meta["plate"].nunique() == 55
    with_moa = meta[meta["moa"] != ""]
    assert len(with_moa) == 3848
    assert with_moa.groupby(["plate", "well"]).ngroups == 962
    assert (with_moa["moa"] == "DMSO").sum() == 1320
    labelled = BBBC021().labelled(meta)
    assert labelled["compound"].nunique() == 38
    assert labelled["moa"].nunique() == 12
    assert labelled.groupby(["compound", "concentration"]).ngroups == 103
    assert set(meta["site"]) == {1, 2, 3, 4}


def test_real_config_lists_the_real_plates_and_compounds(real_metadata_dir):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    archives = [
        line.strip()
        for line in (real_metadata_dir / "zip_files.txt").read_text().splitlines()
        if line.strip()
    ]
    assert [BBBC021().archive_name(p) for p in config["data"]["plates"]] == archives
    moa = pd.read_csv(real_metadata_dir / MOA_CSV)
    assert sorted(config["training"]["folds"]["compounds"]) == sorted(
        set(moa["compound"]) - {"DMSO"}
    )
    assert config["data"]["base_url"] == BBBC021.base_url


def test_synthetic_csvs_have_the_real_columns(real_metadata_dir, tiny_dataset):
    _, source = tiny_dataset
    for name in BBBC021().metadata_files():
        real_header = (real_metadata_dir / name).read_text().splitlines()[0]
        ours = (source / name).read_text().splitlines()[0]
        assert ours == real_header, name
    assert (real_metadata_dir / IMAGE_CSV).read_text().splitlines()[0].split(",") == IMAGE_COLUMNS


def test_the_papers_taxol_exception_on_the_real_metadata(real_metadata_dir):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    rules = config["preprocessing"]["restrictions"]
    labelled = BBBC021().labelled(BBBC021().read_metadata(real_metadata_dir))
    kept = restrict(labelled, rules)
    taxol_before = labelled[labelled["compound"] == "taxol"]
    taxol = kept[kept["compound"] == "taxol"]
    # every plate has taxol 0.3 uM positive controls: 6 wells x 55 plates x 4 sites, plus Week1's
    # D03-D05
    assert taxol_before.groupby(["plate", "well"]).ngroups > 300
    assert set(taxol["batch"]) == {"Week1"} and set(taxol["well"]) == {"D03", "D04", "D05"}
    assert sorted(set(taxol["concentration"])) == [0.3, 1.0, 3.0]
    assert len(taxol) == 4 * 3 * taxol["plate"].nunique()
    # nothing else changes, and all 103 treatments remain
    others = labelled[labelled["compound"] != "taxol"]
    assert len(kept) == len(others) + len(taxol)
    assert kept.groupby(["compound", "concentration"]).ngroups == 103


def test_restrictions_keep_only_matching_fields_of_their_compound():
    meta = pd.DataFrame(
        {
            "compound": ["taxol", "taxol", "taxol", "taxol", "ALLN"],
            "batch": ["Week1", "Week1", "Week2", "Week1", "Week2"],
            "well": ["D03", "B11", "D03", "D04", "B11"],
            "concentration": [3.0, 0.3, 3.0, 0.1, 0.3],
        }
    )
    rule = {
        "compound": "taxol",
        "batches": ["Week1"],
        "wells": "^D0",
        "concentrations": [0.3, 1.0, 3.0],
    }
    assert restrict(meta, [rule]).index.tolist() == [0, 4]
    assert restrict(meta, [{"compound": "taxol", "wells": "^D0"}]).index.tolist() == [0, 2, 3, 4]
    assert restrict(meta, []).index.tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="takes batches, wells, concentrations"):
        restrict(meta, [{"compound": "taxol", "plates": ["x"]}])


def test_the_schema_lists_exactly_the_registered_datasets():
    """One registry: the config schema's dataset enum, the CLI and the synthesizers follow it."""
    import yaml

    from cellmoa.data.datasets import DATASETS
    from cellmoa.data.synthetic import spec_class
    from tests.helpers.paths import ROOT

    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    assert schema["properties"]["dataset"]["enum"] == list(DATASETS)
    for name, adapter in DATASETS.items():
        assert adapter.name == name
        assert hasattr(spec_class(name), "plates")  # every dataset can be synthesized
        demo = yaml.safe_load((ROOT / adapter.demo_config).read_text())
        assert demo["dataset"] == name, adapter.demo_config


def test_a_dataset_missing_required_columns_is_named_with_the_files(tmp_path):
    class Broken(BBBC021):
        def read_fields(self, metadata_dir):
            return super().read_fields(metadata_dir).drop(columns=["replicate", "file_Actin"])

    from cellmoa.data.synthetic.bbbc021 import synthesize
    from tests.helpers.specs import tiny_spec

    raw = synthesize(
        tiny_spec(weeks=1, plates_per_week=1, image_height=16, image_width=16),
        tmp_path,
        archives=False,
    )
    with pytest.raises(
        ValueError, match=r"BBBC021_v1_image\.csv.*lacks the column\(s\) replicate, file_Actin"
    ):
        Broken().read_metadata(raw)


def test_a_broken_metadata_file_on_disk_is_named_with_the_way_out(tmp_path):
    """A metadata CSV already on disk that is binary or lacks columns: the error names the file
    and says to delete it to download it again (no bare UnicodeDecodeError)."""
    from cellmoa.data.datasets import BBBC021

    (tmp_path / "BBBC021_v1_image.csv").write_bytes(b"\xff\xfe\x00\x01binary\x00")
    (tmp_path / "BBBC021_v1_moa.csv").write_text("compound,concentration,moa\n")
    with pytest.raises(
        ValueError, match=r"BBBC021_v1_image\.csv: not a readable CSV.*download it again"
    ):
        BBBC021().read_metadata(tmp_path)
    (tmp_path / "BBBC021_v1_image.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"missing column\(s\).*download it again"):
        BBBC021().read_metadata(tmp_path)
