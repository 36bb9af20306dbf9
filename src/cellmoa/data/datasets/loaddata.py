"""Your own screen: any plate layout a CellProfiler LoadData CSV describes (``dataset: loaddata``).

Three tables describe the screen, configured under ``data:`` (no code to write):

- ``data.loaddata``: the LoadData CSV (``.csv``, ``.csv.gz`` or ``.parquet``), one row per field
  of view, with ``FileName_<Channel>`` and ``PathName_<Channel>`` columns (CellProfiler's ``Orig``
  prefix and an ``Image_`` prefix are accepted: ``Image_FileName_OrigDNA`` is channel ``DNA``)
  and ``Metadata_Plate``, ``Metadata_Well`` (``Metadata_Site`` if a well has several fields; the
  batch column, ``Metadata_CellLine`` and ``Metadata_Replicate`` where the screen has them);
- ``data.treatments``: the plate map, ``Metadata_Well``, ``Metadata_Compound`` and
  ``Metadata_Concentration`` per well, with ``Metadata_Plate`` for one map per plate or without
  it for one map that every plate follows;
- ``data.moas``: the known MoAs, ``Metadata_Compound`` -> ``Metadata_MoA`` (with
  ``Metadata_Concentration`` where the MoA is known for some doses only).

Other spellings of these columns are mapped with ``data.columns``
(``{Metadata_Well: well_position}``). Every problem is an error naming the file, the line and the
fix (:class:`~cellmoa.data.datasets.loaddata_tables.ScreenError`). This module is the adapter
that joins the tables; reading and checking them lives in
:mod:`~cellmoa.data.datasets.loaddata_tables`, :mod:`~cellmoa.data.datasets.loaddata_platemap`
(the plate map and the MoA table) and :mod:`~cellmoa.data.datasets.loaddata_images` (where the
images lie).

Images are addressed as ``<plate>/<path below the plate's folder>`` (the bare file name where a
plate's images share one folder, ``<well>/s1_DNA.tif`` for per-well folders) under the screen's
image folder (``resources/loaddata/images/<plate>/``), which rule ``fetch_plate_images`` fills
from each row's ``PathName_<Channel>/FileName_<Channel>`` (a local path, ``file://`` or
``http(s)://``; relative folders are resolved against ``data.image_root``, by default the folder
of the LoadData CSV).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cellmoa.columns import CELL_LINE, COMPOUND, MOA, PLATE, REPLICATE, SITE, WELL
from cellmoa.data.datasets.base import Dataset
from cellmoa.data.datasets.loaddata_images import (
    add_image_sources,
    channel_columns,
    location_root,
)
from cellmoa.data.datasets.loaddata_platemap import (
    look_up_treatments,
    parse_moas,
    parse_plate_map,
    refuse_unimaged,
)
from cellmoa.data.datasets.loaddata_tables import (
    CANONICAL_COLUMNS,
    MOAS_NAME,
    TREATMENTS_NAME,
    ScreenError,
    find_column,
    line_of,
    number_replicates,
    parse_integers,
    parse_wells,
    read_table,
    refuse_duplicate_fields,
    table_suffix,
)
from cellmoa.data.http import local_path


class LoadData(Dataset):
    """A screen described by a LoadData CSV, a plate map and a MoA table (see the module doc).

    Configured with the config's ``data:`` section through :meth:`configure`.
    """

    name = "loaddata"
    base_url = ""
    channels: tuple[str, ...] = ()
    control: str | None = "DMSO"
    fold_schemes = ("nsc", "nscb")
    #: the grid from the field size: crops near the paper's 512 x 640 (crops.TARGET_CROP)
    crop_grid = (None, None)
    field_size = None
    network_channels: tuple[str | None, ...] = ()
    archives = False
    synthesizer = "cellmoa.data.synthetic.screen:ScreenSpec"
    demo_config = "config/demo_screen.yaml"

    def __init__(self):
        self.data: dict = {}
        self.sources: dict[str, str] = {}
        self.mapping: dict[str, str] = {}
        self.controls_named: tuple[str, ...] = ("DMSO",)
        self.batch_column: str | None = None
        self.unimaged_wells = "error"

    # -- configuration ------------------------------------------------------------------------

    def configure(self, data: dict | None) -> "LoadData":
        """Take the config's ``data:`` section.

        Parameters
        ----------
        data : dict
            The three tables' sources, the column mapping, the control name(s), the batch
            column and the channels (``data.channels``, or the LoadData CSV's ``FileName_*``
            columns when it is a local file).

        Returns
        -------
        LoadData
            This adapter, configured.

        Raises
        ------
        ScreenError
            A table or a setting is missing or wrong; the message names the fix.
        """
        data = dict(data or {})
        self.data = data
        missing = [k for k in ("loaddata", "treatments", "moas") if not data.get(k)]
        if missing:
            raise ScreenError(
                "config: dataset loaddata needs data."
                + ", data.".join(missing)
                + " (the LoadData CSV, the plate map and the MoA table; see README 'Run cellmoa "
                "on your own screen')"
            )
        self.sources = {
            self.loaddata_name: str(data["loaddata"]),
            TREATMENTS_NAME: str(data["treatments"]),
            MOAS_NAME: str(data["moas"]),
        }
        for name in (TREATMENTS_NAME, MOAS_NAME):
            table_suffix(self.sources[name])
        self.mapping = {c: str(data.get("columns", {}).get(c, c)) for c in CANONICAL_COLUMNS}
        unknown = sorted(set(data.get("columns", {})) - set(CANONICAL_COLUMNS))
        if unknown:
            raise ScreenError(
                f"config: data.columns maps {', '.join(unknown)}, which cellmoa does not read; "
                f"the columns it reads are {', '.join(CANONICAL_COLUMNS)}"
            )
        control = data.get("control", "DMSO")
        self.controls_named = tuple([control] if isinstance(control, str) else control)
        self.control = self.controls_named[0] if self.controls_named else None
        self.batch_column = data.get("batch_column")
        self.unimaged_wells = data.get("unimaged_wells", "error")
        self.image_root = str(data.get("image_root") or location_root(str(data["loaddata"])))
        channels = data.get("channels")
        if channels is None:
            channels = self._local_channels(str(data["loaddata"]))
        self.channels = tuple(str(c) for c in channels)
        self.network_channels = tuple((list(self.channels) + [None, None, None])[:3])
        return self

    def _local_channels(self, source: str) -> list[str]:
        """The channels of a local LoadData CSV's ``FileName_*`` columns."""
        local = local_path(source)
        if local is None:
            raise ScreenError(
                f"config: data.loaddata is a URL ({source}): give data.channels (the channel "
                "names of its FileName_<channel> columns, in the order to store them)"
            )
        channels = list(channel_columns(self._header(local)))
        if not channels:
            raise ScreenError(
                f"{source}: no FileName_<channel> columns; a LoadData CSV names each channel's "
                "file in one"
            )
        return channels

    @property
    def loaddata_name(self) -> str:
        """The LoadData CSV's name in the metadata folder (``loaddata`` + its suffix)."""
        return "loaddata" + table_suffix(str(self.data.get("loaddata", "loaddata.csv")))

    def _header(self, path: Path) -> list[str]:
        if not path.is_file():
            raise ScreenError(
                f"{path}: the LoadData CSV (data.loaddata) does not exist; fix the path"
            )
        if table_suffix(str(path)) == ".parquet":
            # pyarrow only for a Parquet table (pandas reads the other formats)
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        return list(pd.read_csv(path, nrows=0, compression="infer").columns)

    def local_plates(self) -> list[str]:
        """The plates of a local LoadData CSV (the default of ``data.plates``)."""
        source = str(self.data["loaddata"])
        local = local_path(source)
        if local is None:
            raise ScreenError(f"config: data.loaddata is a URL ({source}): give data.plates")
        table = read_table(local)
        column = self._column(table, PLATE, source)
        return sorted(set(table[column].astype(str)))

    def annotated_compounds(self) -> list[str]:
        """The compounds of a local MoA table with an MoA, in table order (controls left out)."""
        source = self.sources[MOAS_NAME]
        local = local_path(source)
        if local is None or not local.is_file():
            return []
        table = read_table(local, source)
        compounds = table[self._column(table, COMPOUND, source)].astype(str).str.strip()
        labels = table[self._column(table, MOA, source)].astype(str).str.strip()
        keep = (labels != "") & ~compounds.isin(self.controls_named)
        return list(dict.fromkeys(compounds[keep]))

    def metadata_files(self) -> list[str]:
        """The three tables' names in the metadata folder."""
        return [self.loaddata_name, TREATMENTS_NAME, MOAS_NAME]

    def metadata_sources(self, base_url: str) -> dict[str, str]:
        """Where each table comes from: the configured sources (``base_url`` is not used)."""
        return dict(self.sources)

    def check_metadata_file(self, name: str, path: Path) -> None:
        """Check a fetched table: a Parquet table must be readable, a CSV as for any dataset."""
        if name.endswith(".parquet"):
            read_table(path, self.sources.get(name))
            return
        super().check_metadata_file(name, path)

    def archive_name(self, plate: str) -> str:
        """Never: a loaddata screen's images are fetched one by one (raises ScreenError)."""
        raise ScreenError(
            "a loaddata screen has no plate archives: its images are fetched one by one"
        )

    def batch_of(self, plate: str) -> str:
        """A plate's batch where no batch column says otherwise: the plate itself."""
        return plate

    # -- reading --------------------------------------------------------------------------------

    def _column(
        self, table: pd.DataFrame, canonical: str, source: str, required: bool = True
    ) -> str | None:
        return find_column(table, canonical, source, self.mapping, required)

    def read_fields(self, metadata_dir: Path) -> pd.DataFrame:
        """The fields of the screen from the three tables in ``metadata_dir`` (see :meth:`join`)."""
        metadata_dir = Path(metadata_dir)
        tables = {}
        for name in self.metadata_files():
            path = metadata_dir / name
            if not path.exists():
                raise FileNotFoundError(
                    f"{path} is missing: run rule download_metadata (it copies "
                    f"{self.sources.get(name, name)} there)"
                )
            tables[name] = read_table(path, self.sources.get(name))
        return self.join(tables[self.loaddata_name], tables[TREATMENTS_NAME], tables[MOAS_NAME])

    def join(
        self, images: pd.DataFrame, treatments: pd.DataFrame, moas: pd.DataFrame
    ) -> pd.DataFrame:
        """The fields of the LoadData table with their treatment and MoA.

        Parameters
        ----------
        images, treatments, moas : pandas.DataFrame
            The LoadData table, the plate map and the MoA table, as read (text).

        Returns
        -------
        pandas.DataFrame
            Plate, well, site, batch, treatment and MoA per field (see
            :meth:`Dataset.read_metadata`), plus ``source_<channel>``: where each image lies.

        Raises
        ------
        ScreenError
            Naming the file, the line and the fix.
        """
        src = self.sources.get(self.loaddata_name, "LoadData CSV")
        if images.empty:
            raise ScreenError(f"{src}: the LoadData table has no rows")
        fmt = self.data.get("plate_format")
        plates = images[self._column(images, PLATE, src)].astype(str).str.strip()
        wells = parse_wells(images[self._column(images, WELL, src)], src, fmt)
        site_column = self._column(images, SITE, src, required=False)
        if site_column is None:
            sites = images.groupby([plates, wells]).cumcount() + 1
        else:
            sites = parse_integers(images[site_column], src, site_column)
        out = pd.DataFrame(
            {"plate": plates.values, "well": wells.values, "site": np.asarray(sites)}
        )
        refuse_duplicate_fields(out, src)
        out["batch"] = self._batches(images, plates, src)
        line_column = self._column(images, CELL_LINE, src, required=False)
        out["cell_line"] = images[line_column].astype(str).values if line_column else "unknown"
        treated = self._treatments(out, treatments)
        # every control name (data.control may list several) is stored as the first one
        out["compound"] = (
            treated["compound"].replace({n: self.control for n in self.controls_named[1:]}).values
        )
        out["concentration"] = treated["concentration"].values
        out["moa"] = self._moas(out, moas)
        replicate_column = self._column(images, REPLICATE, src, required=False)
        if replicate_column:
            out["replicate"] = parse_integers(images[replicate_column], src, replicate_column)
        else:
            out["replicate"] = number_replicates(out)
        out["image_number"] = _image_numbers(images)
        add_image_sources(images, out, src, self.channels, self.image_root)
        return out[[*self.required_columns(), *[f"source_{c}" for c in self.channels]]]

    def _batches(self, images: pd.DataFrame, plates: pd.Series, src: str) -> np.ndarray:
        if self.batch_column is None:
            return plates.values
        if self.batch_column not in images.columns:
            raise ScreenError(
                f"{src}: no column {self.batch_column} (data.batch_column); its columns are "
                f"{', '.join(map(str, images.columns))}. Fix data.batch_column, or set it to "
                "null to treat each plate as its own batch"
            )
        batches = images[self.batch_column].astype(str).str.strip()
        per_plate = (
            pd.DataFrame({"plate": plates, "batch": batches}).groupby("plate")["batch"].nunique()
        )
        if (per_plate > 1).any():
            plate = per_plate.index[per_plate > 1][0]
            raise ScreenError(
                f"{src}: plate {plate} has rows in several batches ({self.batch_column}); a plate "
                "belongs to one batch"
            )
        return batches.values

    def _treatments(self, fields: pd.DataFrame, treatments: pd.DataFrame) -> pd.DataFrame:
        src = self.sources.get(TREATMENTS_NAME, TREATMENTS_NAME)
        images_src = self.sources.get(self.loaddata_name)
        table, per_plate = parse_plate_map(
            treatments, src, self.mapping, self.controls_named, self.data.get("plate_format")
        )
        treated = look_up_treatments(fields, table, per_plate, src, images_src)
        refuse_unimaged(fields, table, per_plate, src, images_src, self.unimaged_wells)
        return treated

    def _moas(self, fields: pd.DataFrame, moas: pd.DataFrame) -> list[str]:
        src = self.sources.get(MOAS_NAME, MOAS_NAME)
        known, by_concentration = parse_moas(moas, src, self.mapping)
        if by_concentration:
            wanted = zip(fields["compound"], fields["concentration"])
        else:
            wanted = fields["compound"]
        return [known[k][0] if k in known else "" for k in wanted]

    def plate_sources(self, metadata: pd.DataFrame, plate: str) -> list[tuple[str, str, int]]:
        """Where every image of a plate comes from, in table order.

        Parameters
        ----------
        metadata : pandas.DataFrame
            The fields (:meth:`join`).
        plate : str

        Returns
        -------
        list of (str, str, int)
            ``(stored name relative to the plate folder, source location, CSV line)``.
        """
        rows = metadata[metadata["plate"] == plate]
        if rows.empty:
            raise ValueError(
                f"plate {plate} has no images in the metadata; check data.plates in the config"
            )
        out = []
        for index, row in rows.iterrows():
            for channel in self.channels:
                out.append(
                    (
                        row[f"file_{channel}"].split("/", 1)[1],
                        row[f"source_{channel}"],
                        line_of(index),
                    )
                )
        return out


def _image_numbers(images: pd.DataFrame) -> np.ndarray:
    """The table's ``ImageNumber`` where it numbers the rows uniquely, else 1, 2, .."""
    numbers = images["ImageNumber"] if "ImageNumber" in images.columns else None
    if (
        numbers is not None
        and numbers.astype(str).str.fullmatch(r"\d+").all()
        and numbers.astype(int).is_unique
    ):
        return numbers.astype(int).values
    return np.arange(1, len(images) + 1)


__all__ = ["LoadData"]
