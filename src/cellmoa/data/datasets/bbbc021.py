"""BBBC021 v1 (Caie et al. 2010; Ljosa et al. 2013): MCF-7 cells, DAPI / Tubulin / Actin.

Layout as published by the Broad Bioimage Benchmark Collection:

- one zip per plate, ``BBBC021_v1_images_<plate>.zip``, whose members sit under ``<plate>/``;
- ``BBBC021_v1_image.csv``: one row per field of view (columns :data:`IMAGE_COLUMNS`);
- ``BBBC021_v1_moa.csv``: ``compound, concentration, moa`` for the 103 labelled treatments + DMSO;
- ``BBBC021_v1_compound.csv``: ``compound, smiles``.

Concentrations are written differently in the two tables (``0.3`` vs ``0.300000``), so they are
joined on parsed floats.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from cellmoa.data.datasets.base import Dataset
from cellmoa.validation import round_significant

IMAGE_CSV = "BBBC021_v1_image.csv"
MOA_CSV = "BBBC021_v1_moa.csv"
COMPOUND_CSV = "BBBC021_v1_compound.csv"

IMAGE_COLUMNS = [
    "TableNumber",
    "ImageNumber",
    "Image_FileName_DAPI",
    "Image_PathName_DAPI",
    "Image_FileName_Tubulin",
    "Image_PathName_Tubulin",
    "Image_FileName_Actin",
    "Image_PathName_Actin",
    "Image_Metadata_Plate_DAPI",
    "Image_Metadata_Well_DAPI",
    "Replicate",
    "Image_Metadata_Compound",
    "Image_Metadata_Concentration",
]
MOA_COLUMNS = ["compound", "concentration", "moa"]
COMPOUND_COLUMNS = ["compound", "smiles"]

CHANNELS = ("DAPI", "Tubulin", "Actin")
#: channel token in the file names: w1 = DAPI, w2 = Tubulin, w4 = Actin
CHANNEL_TOKENS = {"DAPI": 1, "Tubulin": 2, "Actin": 4}

_SITE_RE = re.compile(r"_s(\d+)_w(\d)")


def concentration_key(values) -> np.ndarray:
    """Concentrations as join keys: parsed floats rounded to 9 significant digits."""
    return round_significant(values, 9)


_REFETCH = (
    "delete it (and manifests/metadata.tsv beside the metadata folder) "
    "and rerun to download it again"
)


def _read_csv(path: Path, dtype: dict) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=dtype)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValueError(
            f"{path}: not a readable CSV table ({type(exc).__name__}: {exc}); {_REFETCH}"
        ) from exc


def _require_columns(frame: pd.DataFrame, columns: list[str], path: Path) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {', '.join(missing)}; expected BBBC021's columns "
            f"{', '.join(columns)}; if the file is not BBBC021's table, {_REFETCH}"
        )


class BBBC021(Dataset):
    """BBBC021 v1: MCF-7 cells in three channels, one zip archive per plate, MoA labels."""

    name = "bbbc021"
    channels = CHANNELS
    control = "DMSO"
    base_url = "https://data.broadinstitute.org/bbbc/BBBC021"
    cell_line = "MCF-7"
    fold_schemes = ("nsc", "nscb")
    #: the paper: 4 crops of 512 x 640 per 1024 x 1280 field
    crop_grid = (2, 2)
    field_size = None
    network_channels = CHANNELS
    synthesizer = "cellmoa.data.synthetic.bbbc021:SyntheticSpec"
    demo_config = "config/demo.yaml"
    #: Kensert et al. (2019), leave-one-compound-out, treatment-level accuracy (103 treatments)
    reference_accuracy = {"ResNet50": 0.971, "InceptionV3": 0.971, "InceptionResNetV2": 0.951}
    reference_scheme = "nsc"

    def metadata_files(self) -> list[str]:
        """The image, MoA and compound tables."""
        return [IMAGE_CSV, MOA_CSV, COMPOUND_CSV]

    def metadata_columns(self) -> dict[str, list[str]]:
        """The columns of each of BBBC021's three tables."""
        return {IMAGE_CSV: IMAGE_COLUMNS, MOA_CSV: MOA_COLUMNS, COMPOUND_CSV: COMPOUND_COLUMNS}

    def archive_name(self, plate: str) -> str:
        """``BBBC021_v1_images_<plate>.zip``."""
        return f"BBBC021_v1_images_{plate}.zip"

    def batch_of(self, plate: str) -> str:
        """The week a plate belongs to: ``Week10_40111`` -> ``Week10``."""
        return plate.split("_", 1)[0]

    def read_fields(self, metadata_dir: Path) -> pd.DataFrame:
        """The image table joined to the MoA table, both read from ``metadata_dir``."""
        image_path = metadata_dir / IMAGE_CSV
        moa_path = metadata_dir / MOA_CSV
        for path in (image_path, moa_path):
            if not path.exists():
                raise FileNotFoundError(
                    f"{path} is missing: run the download rule (download_metadata) or copy "
                    f"BBBC021's metadata CSVs into {metadata_dir}"
                )
        images = _read_csv(image_path, {"Image_Metadata_Compound": str})
        _require_columns(images, IMAGE_COLUMNS, image_path)
        moa = _read_csv(moa_path, {"compound": str, "moa": str})
        _require_columns(moa, MOA_COLUMNS, moa_path)
        return self.join(images, moa)

    def join(self, images: pd.DataFrame, moa: pd.DataFrame) -> pd.DataFrame:
        """Join the image table to the MoA table on (compound, parsed concentration)."""
        labels = {
            (c, k): m
            for c, k, m in zip(moa["compound"], concentration_key(moa["concentration"]), moa["moa"])
        }
        conc = concentration_key(images["Image_Metadata_Concentration"])
        compounds = images["Image_Metadata_Compound"].astype(str)
        plates = images["Image_Metadata_Plate_DAPI"].astype(str)
        sites = []
        for name in images["Image_FileName_DAPI"]:
            match = _SITE_RE.search(name)
            if match is None:
                raise ValueError(
                    f"{IMAGE_CSV}: file name {name!r} has no '_s<site>_w<channel>' part"
                )
            sites.append(int(match.group(1)))
        out = pd.DataFrame(
            {
                "plate": plates,
                "batch": [self.batch_of(p) for p in plates],
                "cell_line": self.cell_line,
                "well": images["Image_Metadata_Well_DAPI"].astype(str),
                "site": sites,
                "replicate": images["Replicate"].astype(int),
                "compound": compounds,
                "concentration": conc,
                "moa": [labels.get((c, k), "") for c, k in zip(compounds, conc)],
                "image_number": images["ImageNumber"].astype(int),
            }
        )
        for channel in self.channels:
            # Files are addressed as <plate folder>/<file name>; the plate folder is the last
            # part of Image_PathName (e.g. Week1/Week1_22123).
            folders = images[f"Image_PathName_{channel}"].astype(str).str.split("/").str[-1]
            out[f"file_{channel}"] = folders + "/" + images[f"Image_FileName_{channel}"]
        return out.reset_index(drop=True)
