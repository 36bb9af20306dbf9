"""BBBC021's metadata tables, written as BBBC021 writes them (for the synthetic dataset).

``BBBC021_v1_image.csv`` (one row per field, no quoting, the shortest number forms),
``BBBC021_v1_moa.csv`` and ``BBBC021_v1_compound.csv`` (strings quoted, six-decimal
concentrations), from the rows :mod:`cellmoa.data.synthetic.bbbc021` plans.
"""

from __future__ import annotations

import csv
from pathlib import Path

from cellmoa.data.datasets.bbbc021 import COMPOUND_CSV, IMAGE_COLUMNS, IMAGE_CSV, MOA_CSV
from cellmoa.files import atomic_path


def format_concentration(value: float) -> str:
    """A concentration as ``BBBC021_v1_image.csv`` writes it.

    image.csv writes the shortest form (0.003), moa.csv six decimals (0.300000).
    """
    return repr(float(value)).rstrip("0").rstrip(".") if value != 0 else "0.0"


def image_row(row: dict, names: dict[str, str], image_number: int) -> dict:
    """The ``BBBC021_v1_image.csv`` row of one field."""
    week, plate = row["week"], row["plate"]
    return {
        "TableNumber": week,
        "ImageNumber": image_number,
        "Image_FileName_DAPI": names["DAPI"],
        "Image_PathName_DAPI": f"Week{week}/{plate}",
        "Image_FileName_Tubulin": names["Tubulin"],
        "Image_PathName_Tubulin": f"Week{week}/{plate}",
        "Image_FileName_Actin": names["Actin"],
        "Image_PathName_Actin": f"Week{week}/{plate}",
        "Image_Metadata_Plate_DAPI": plate,
        "Image_Metadata_Well_DAPI": row["well"],
        "Replicate": row["replicate"],
        "Image_Metadata_Compound": row["compound"],
        "Image_Metadata_Concentration": format_concentration(row["concentration"]),
    }


def write_tables(spec, out_dir: Path, image_rows: list[dict]) -> None:
    """Write BBBC021's image, MoA and compound CSVs."""
    _write_csv(out_dir / IMAGE_CSV, IMAGE_COLUMNS, image_rows, quote_strings=False)
    moa_rows = [{"compound": "DMSO", "concentration": "0.000000", "moa": "DMSO"}]
    for moa, compounds in spec.moas.items():
        for c in compounds:
            for conc in spec.concentrations:
                moa_rows.append({"compound": c, "concentration": f"{conc:.6f}", "moa": moa})
    _write_csv(
        out_dir / MOA_CSV, ["compound", "concentration", "moa"], moa_rows, quote_strings=True
    )
    compound_rows = [
        {"compound": c, "smiles": ""} for c in ["DMSO", *spec.compounds, *spec.unlabelled_compounds]
    ]
    _write_csv(out_dir / COMPOUND_CSV, ["compound", "smiles"], compound_rows, quote_strings=True)


def _write_csv(path: Path, columns: list[str], rows: list[dict], quote_strings: bool) -> None:
    """Write a CSV as BBBC021 does.

    BBBC021's moa/compound CSVs quote strings (header included, ``concentration`` excepted);
    image.csv quotes nothing.
    """
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        if quote_strings:

            def cell(column, value):
                return (
                    str(value)
                    if column == "concentration"
                    else '"' + str(value).replace('"', '""') + '"'
                )

            fh.write(",".join(cell(c, c) for c in columns) + "\n")
            for row in rows:
                fh.write(",".join(cell(c, row[c]) for c in columns) + "\n")
        else:
            writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
