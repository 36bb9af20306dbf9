"""Your own screen: any plate layout described by a CellProfiler LoadData CSV (``dataset: loaddata``).

Three tables describe the screen, configured under ``data:`` (no code to write):

- ``data.loaddata``: the LoadData CSV (``.csv``, ``.csv.gz`` or ``.parquet``), one row per field of
  view, with ``FileName_<Channel>`` and ``PathName_<Channel>`` columns (CellProfiler's ``Orig``
  prefix and an ``Image_`` prefix are accepted: ``Image_FileName_OrigDNA`` is channel ``DNA``) and
  ``Metadata_Plate``, ``Metadata_Well`` (``Metadata_Site`` if a well has several fields; the batch
  column, ``Metadata_CellLine`` and ``Metadata_Replicate`` where the screen has them);
- ``data.treatments``: the plate map, ``Metadata_Well``, ``Metadata_Compound`` and
  ``Metadata_Concentration`` per well, with ``Metadata_Plate`` for one map per plate or without it for
  one map that every plate follows;
- ``data.moas``: the known MoAs, ``Metadata_Compound`` -> ``Metadata_MoA`` (with
  ``Metadata_Concentration`` where the MoA is known for some doses only).

Other spellings of these columns are mapped with ``data.columns`` (``{Metadata_Well: well_position}``).
Every problem is an error naming the file, the line and the fix (:class:`ScreenError`).

Images are addressed as ``<plate>/<file name>`` under the screen's image folder
(``resources/loaddata/images/<plate>/``), which rule ``fetch_plate_images`` fills from each row's
``PathName_<Channel>/FileName_<Channel>`` (a local path, ``file://`` or ``http(s)://``; relative
folders are resolved against ``data.image_root``, by default the folder of the LoadData CSV).
"""

from __future__ import annotations

import logging
import posixpath
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

from cellmoa.data.datasets.base import Dataset
from cellmoa.data.download import local_path
from cellmoa.data.wells import normalize_well
from cellmoa.validation import round_significant

#: the column names cellmoa reads, as CellProfiler and pycytominer spell them (``data.columns``
#: maps each to another spelling)
CANONICAL_COLUMNS = (
    "Metadata_Plate",
    "Metadata_Well",
    "Metadata_Site",
    "Metadata_Compound",
    "Metadata_Concentration",
    "Metadata_MoA",
    "Metadata_CellLine",
    "Metadata_Replicate",
)
#: names of the three tables in the metadata folder (the LoadData CSV keeps its own suffix)
TREATMENTS_NAME = "treatments.csv"
MOAS_NAME = "moas.csv"
_SUFFIXES = (".csv.gz", ".csv", ".parquet")


class ScreenError(ValueError):
    """A problem in a screen's tables or images; the message names the file, the line and the fix."""


def table_suffix(source: str) -> str:
    """The table format of a path or URL: ``.csv``, ``.csv.gz`` or ``.parquet``."""
    path = urllib.parse.urlparse(source).path if "://" in source else source
    for suffix in _SUFFIXES:
        if path.lower().endswith(suffix):
            return suffix
    raise ScreenError(f"{source}: a table must be .csv, .csv.gz or .parquet (its name says which)")


def read_table(path: Path, source: str | None = None) -> pd.DataFrame:
    """Read a CSV, CSV.gz or Parquet table with every column as text (so that well names, plate
    barcodes and concentrations keep their spelling); ``source`` names it in errors."""
    path = Path(path)
    name = source or str(path)
    suffix = table_suffix(str(path))
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(path)
            return frame.astype({c: str for c in frame.columns if frame[c].dtype == object})
        return pd.read_csv(path, dtype=str, keep_default_na=False, compression="infer")
    except FileNotFoundError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types for a damaged table
        raise ScreenError(
            f"{name}: not a readable {suffix} table ({type(exc).__name__}: {exc}); fix the file or its name"
        ) from exc


def line_of(index: int) -> int:
    """The line of a CSV data row (0-based row index; line 1 is the header)."""
    return int(index) + 2


def channel_columns(columns, kind: str = "FileName") -> dict[str, str]:
    """Channel name -> column for the ``FileName_`` (or ``PathName_``) columns of a LoadData table,
    in table order: ``FileName_DNA``, ``Image_FileName_OrigDNA`` -> ``DNA``."""
    out: dict[str, str] = {}
    for column in columns:
        name = column[len("Image_") :] if column.startswith("Image_") else column
        if not name.startswith(f"{kind}_"):
            continue
        channel = name[len(kind) + 1 :]
        if channel.startswith("Orig") and len(channel) > 4:
            channel = channel[4:]
        if channel in out:
            raise ScreenError(
                f"columns {out[channel]} and {column} both name channel {channel}; keep one"
            )
        out[channel] = column
    return out


def _join_location(root: str, folder: str, name: str) -> str:
    """Where an image lies: ``folder/name``, the folder resolved against ``root`` where relative."""
    if "://" in name or Path(name).is_absolute():
        return name
    if folder:
        if "://" in folder:
            return folder.rstrip("/") + "/" + urllib.parse.quote(name)
        if Path(folder).is_absolute():
            return str(Path(folder) / name)
    relative = posixpath.join(folder, name) if folder else name
    if "://" in root:
        return root.rstrip("/") + "/" + urllib.parse.quote(relative)
    return str(Path(root) / relative)


def _location_root(source: str) -> str:
    """The folder (or URL folder) holding a table: relative image folders start there."""
    if "://" in source:
        parsed = urllib.parse.urlparse(source)
        if parsed.scheme == "file":
            return str(Path(urllib.request.url2pathname(parsed.path)).parent)
        return source.rsplit("/", 1)[0]
    return str(Path(source).resolve().parent)


class LoadData(Dataset):
    """A screen described by a LoadData CSV, a plate map and a MoA table (see the module doc);
    configured with the config's ``data:`` section through :meth:`configure`."""

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
        """Take the config's ``data:`` section: the three tables' sources, the column mapping,
        the control name(s), the batch column and the channels (``data.channels``, or the
        LoadData CSV's ``FileName_*`` columns when it is a local file)."""
        data = dict(data or {})
        self.data = data
        missing = [k for k in ("loaddata", "treatments", "moas") if not data.get(k)]
        if missing:
            raise ScreenError(
                "config: dataset loaddata needs data."
                + ", data.".join(missing)
                + " (the LoadData CSV, the plate map and the MoA table; see README 'Run cellmoa on your own screen')"
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
        self.image_root = str(data.get("image_root") or _location_root(str(data["loaddata"])))
        channels = data.get("channels")
        if channels is None:
            source = str(data["loaddata"])
            local = local_path(source)
            if local is None:
                raise ScreenError(
                    f"config: data.loaddata is a URL ({source}): give data.channels (the channel names "
                    "of its FileName_<channel> columns, in the order to store them)"
                )
            channels = list(channel_columns(self._header(local)))
            if not channels:
                raise ScreenError(
                    f"{source}: no FileName_<channel> columns; a LoadData CSV names each channel's file in one"
                )
        self.channels = tuple(str(c) for c in channels)
        self.network_channels = tuple((list(self.channels) + [None, None, None])[:3])
        return self

    @property
    def loaddata_name(self) -> str:
        return "loaddata" + table_suffix(str(self.data.get("loaddata", "loaddata.csv")))

    def _header(self, path: Path) -> list[str]:
        if not path.is_file():
            raise ScreenError(
                f"{path}: the LoadData CSV (data.loaddata) does not exist; fix the path"
            )
        if table_suffix(str(path)) == ".parquet":
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
        column = self._column(table, "Metadata_Plate", source)
        return sorted(set(table[column].astype(str)))

    def annotated_compounds(self) -> list[str]:
        """The compounds of a local MoA table with an MoA, in table order (controls left out)."""
        source = self.sources[MOAS_NAME]
        local = local_path(source)
        if local is None or not local.is_file():
            return []
        table = read_table(local, source)
        compounds = table[self._column(table, "Metadata_Compound", source)].astype(str).str.strip()
        labels = table[self._column(table, "Metadata_MoA", source)].astype(str).str.strip()
        keep = (labels != "") & ~compounds.isin(self.controls_named)
        return list(dict.fromkeys(compounds[keep]))

    def metadata_files(self) -> list[str]:
        return [self.loaddata_name, TREATMENTS_NAME, MOAS_NAME]

    def metadata_sources(self, base_url: str) -> dict[str, str]:
        return dict(self.sources)

    def check_metadata_file(self, name: str, path: Path) -> None:
        if name.endswith(".parquet"):
            read_table(path, self.sources.get(name))
            return
        super().check_metadata_file(name, path)

    def archive_name(self, plate: str) -> str:
        raise ScreenError(
            "a loaddata screen has no plate archives: its images are fetched one by one"
        )

    def batch_of(self, plate: str) -> str:
        return plate

    # -- reading --------------------------------------------------------------------------------

    def _column(
        self, table: pd.DataFrame, canonical: str, source: str, required: bool = True
    ) -> str | None:
        column = self.mapping.get(canonical, canonical)
        if column in table.columns:
            return column
        if not required:
            return None
        mapped = f" (data.columns maps {canonical} to it)" if column != canonical else ""
        raise ScreenError(
            f"{source}: no column {column}{mapped}; its columns are {', '.join(map(str, table.columns))}. "
            f"Fix: rename the column, or map it with data.columns: {{{canonical}: <your column>}}"
        )

    def read_fields(self, metadata_dir: Path) -> pd.DataFrame:
        metadata_dir = Path(metadata_dir)
        tables = {}
        for name in self.metadata_files():
            path = metadata_dir / name
            if not path.exists():
                raise FileNotFoundError(
                    f"{path} is missing: run rule download_metadata (it copies {self.sources.get(name, name)} there)"
                )
            tables[name] = read_table(path, self.sources.get(name))
        return self.join(tables[self.loaddata_name], tables[TREATMENTS_NAME], tables[MOAS_NAME])

    def join(
        self, images: pd.DataFrame, treatments: pd.DataFrame, moas: pd.DataFrame
    ) -> pd.DataFrame:
        """The fields of the LoadData table with their plate, well, site, batch, treatment and MoA
        (see :meth:`Dataset.read_metadata`), plus ``source_<channel>``: where each image lies."""
        src = self.sources.get(self.loaddata_name, "LoadData CSV")
        if images.empty:
            raise ScreenError(f"{src}: the LoadData table has no rows")
        plates = images[self._column(images, "Metadata_Plate", src)].astype(str).str.strip()
        wells = self._wells(images[self._column(images, "Metadata_Well", src)], src)
        site_column = self._column(images, "Metadata_Site", src, required=False)
        if site_column is None:
            sites = images.groupby([plates, wells]).cumcount() + 1
        else:
            sites = self._integers(images[site_column], src, site_column)
        out = pd.DataFrame(
            {"plate": plates.values, "well": wells.values, "site": np.asarray(sites)}
        )
        self._refuse_duplicates(out, src)
        out["batch"] = self._batches(images, plates, src)
        line_column = self._column(images, "Metadata_CellLine", src, required=False)
        out["cell_line"] = images[line_column].astype(str).values if line_column else "unknown"
        treated = self._treatments(out, treatments)
        # every control name (data.control may list several) is stored as the first one
        out["compound"] = (
            treated["compound"].replace({n: self.control for n in self.controls_named[1:]}).values
        )
        out["concentration"] = treated["concentration"].values
        out["moa"] = self._moas(out, moas)
        replicate_column = self._column(images, "Metadata_Replicate", src, required=False)
        if replicate_column:
            out["replicate"] = self._integers(images[replicate_column], src, replicate_column)
        else:
            out["replicate"] = self._replicates(out)
        numbers = images["ImageNumber"] if "ImageNumber" in images.columns else None
        if (
            numbers is not None
            and numbers.astype(str).str.fullmatch(r"\d+").all()
            and numbers.astype(int).is_unique
        ):
            out["image_number"] = numbers.astype(int).values
        else:
            out["image_number"] = np.arange(1, len(out) + 1)
        self._files(images, out, src)
        return out[[*self.required_columns(), *[f"source_{c}" for c in self.channels]]]

    def _wells(self, values: pd.Series, src: str) -> pd.Series:
        fmt = self.data.get("plate_format")
        out = []
        for index, value in values.items():
            try:
                out.append(normalize_well(value, fmt))
            except ValueError as exc:
                fix = " or set data.plate_format to the screen's (96, 384, 1536)" if fmt else ""
                raise ScreenError(
                    f"{src} line {line_of(index)}: {exc}. Fix the well name{fix}"
                ) from None
        return pd.Series(out, index=values.index)

    @staticmethod
    def _integers(values: pd.Series, src: str, column: str) -> np.ndarray:
        text = values.astype(str).str.strip()
        bad = ~text.str.fullmatch(r"\d+")
        if bad.any():
            index = bad.idxmax()
            raise ScreenError(
                f"{src} line {line_of(index)}: {column} is {values[index]!r}, not a whole number; fix it"
            )
        return text.astype(int).values

    def _refuse_duplicates(self, fields: pd.DataFrame, src: str) -> None:
        dup = fields.duplicated(["plate", "well", "site"], keep=False)
        if dup.any():
            first = fields[dup].iloc[0]
            same = fields.index[
                dup
                & (fields["plate"] == first["plate"])
                & (fields["well"] == first["well"])
                & (fields["site"] == first["site"])
            ]
            lines = ", ".join(str(line_of(i)) for i in same[:5])
            raise ScreenError(
                f"{src} lines {lines}: the same field (plate {first['plate']}, well {first['well']}, site "
                f"{first['site']}) is listed {len(same)} times ({int(dup.sum())} duplicated rows in all). "
                "Fix: remove the repeated rows, or give each field of a well its own Metadata_Site"
            )

    def _batches(self, images: pd.DataFrame, plates: pd.Series, src: str) -> np.ndarray:
        if self.batch_column is None:
            return plates.values
        if self.batch_column not in images.columns:
            raise ScreenError(
                f"{src}: no column {self.batch_column} (data.batch_column); its columns are "
                f"{', '.join(map(str, images.columns))}. Fix data.batch_column, or set it to null to treat "
                "each plate as its own batch"
            )
        batches = images[self.batch_column].astype(str).str.strip()
        per_plate = (
            pd.DataFrame({"plate": plates, "batch": batches}).groupby("plate")["batch"].nunique()
        )
        if (per_plate > 1).any():
            plate = per_plate.index[per_plate > 1][0]
            raise ScreenError(
                f"{src}: plate {plate} has rows in several batches ({self.batch_column}); a plate belongs to one batch"
            )
        return batches.values

    def _treatments(self, fields: pd.DataFrame, treatments: pd.DataFrame) -> pd.DataFrame:
        src = self.sources.get(TREATMENTS_NAME, TREATMENTS_NAME)
        well_col = self._column(treatments, "Metadata_Well", src)
        compound_col = self._column(treatments, "Metadata_Compound", src)
        conc_col = self._column(treatments, "Metadata_Concentration", src)
        plate_col = self._column(treatments, "Metadata_Plate", src, required=False)
        table = pd.DataFrame({"well": self._wells(treatments[well_col], src)})
        table["plate"] = treatments[plate_col].astype(str).str.strip() if plate_col else ""
        table["compound"] = treatments[compound_col].astype(str).str.strip()
        conc = pd.to_numeric(treatments[conc_col].replace("", np.nan), errors="coerce")
        bad = conc.isna() & (treatments[conc_col].astype(str).str.strip() != "")
        if bad.any():
            index = bad.idxmax()
            raise ScreenError(
                f"{src} line {line_of(index)}: {conc_col} is {treatments[conc_col][index]!r}, not a number; fix it"
            )
        unset = conc.isna() & ~table["compound"].isin(self.controls_named)
        if unset.any():
            index = unset.idxmax()
            raise ScreenError(
                f"{src} line {line_of(index)}: compound {table['compound'][index]} has no {conc_col}; "
                "give it (only the control may leave it empty)"
            )
        table["concentration"] = round_significant(conc.fillna(0.0).to_numpy(float), 9)
        empty = table["compound"] == ""
        if empty.any():
            index = empty.idxmax()
            raise ScreenError(
                f"{src} line {line_of(index)}: well {table['well'][index]} has no compound; fill it or drop the row"
            )
        keys = ["plate", "well"]
        dup = table.duplicated(keys, keep=False)
        if dup.any():
            first = table[dup].iloc[0]
            lines = ", ".join(
                str(line_of(i))
                for i in table.index[
                    dup & (table["well"] == first["well"]) & (table["plate"] == first["plate"])
                ][:5]
            )
            where = f"plate {first['plate']} " if plate_col else ""
            raise ScreenError(
                f"{src} lines {lines}: {where}well {first['well']} is given more than one treatment; keep one row per well"
            )
        lookup = table.set_index(keys)
        key = pd.MultiIndex.from_arrays(
            [fields["plate"] if plate_col else pd.Series([""] * len(fields)), fields["well"]]
        )
        found = key.isin(lookup.index)
        if not found.all():
            index = int(np.flatnonzero(~found)[0])
            row = fields.iloc[index]
            n_wells = len(set(zip(fields["plate"][~found], fields["well"][~found])))
            where = (
                f"plate {row['plate']} well {row['well']}"
                if plate_col
                else f"well {row['well']} (plate {row['plate']})"
            )
            raise ScreenError(
                f"{self.sources.get(self.loaddata_name)} line {line_of(index)}: {where} has no treatment in the plate "
                f"map {src} ({n_wells} well(s) in all). Fix: add the well to the plate map, or remove its images' rows"
            )
        self._refuse_unimaged(fields, table, plate_col is not None, src)
        return lookup.loc[key, ["compound", "concentration"]].reset_index(drop=True)

    def _refuse_unimaged(
        self, fields: pd.DataFrame, table: pd.DataFrame, per_plate: bool, src: str
    ) -> None:
        """A plate-map well of a screened plate that no image shows (a typo in the map, or images lost)."""
        if self.unimaged_wells == "ignore":
            return
        imaged = set(zip(fields["plate"], fields["well"]))
        plates = sorted(set(fields["plate"]))
        missing = []
        for index, row in table.iterrows():
            for plate in [row["plate"]] if per_plate else plates:
                if plate in plates and (plate, row["well"]) not in imaged:
                    missing.append((index, plate, row["well"]))
        if missing:
            index, plate, well = missing[0]
            message = (
                f"{src} line {line_of(index)}: well {well} of plate {plate} has a treatment but no image in "
                f"{self.sources.get(self.loaddata_name)} ({len(missing)} such well(s)). Fix: add its images to the "
                "LoadData CSV or drop the well from the plate map; data.unimaged_wells: ignore accepts it"
            )
            if self.unimaged_wells == "error":
                raise ScreenError(message)
            logging.getLogger(__name__).warning(message)

    def _moas(self, fields: pd.DataFrame, moas: pd.DataFrame) -> list[str]:
        src = self.sources.get(MOAS_NAME, MOAS_NAME)
        compound_col = self._column(moas, "Metadata_Compound", src)
        moa_col = self._column(moas, "Metadata_MoA", src)
        conc_col = self._column(moas, "Metadata_Concentration", src, required=False)
        compounds = moas[compound_col].astype(str).str.strip()
        labels = moas[moa_col].astype(str).str.strip()
        if conc_col:
            conc = pd.to_numeric(moas[conc_col].replace("", np.nan), errors="coerce")
            keys = list(zip(compounds, round_significant(conc.fillna(0.0).to_numpy(float), 9)))
        else:
            keys = list(compounds)
        known: dict = {}
        for index, key, label in zip(moas.index, keys, labels):
            if label == "":
                continue
            if key in known and known[key][0] != label:
                raise ScreenError(
                    f"{src} lines {line_of(known[key][1])} and {line_of(index)}: {key} is given two MoAs "
                    f"({known[key][0]}, {label}); keep one"
                )
            known[key] = (label, index)
        if conc_col:
            wanted = zip(fields["compound"], fields["concentration"])
        else:
            wanted = fields["compound"]
        return [known[k][0] if k in known else "" for k in wanted]

    @staticmethod
    def _replicates(fields: pd.DataFrame) -> np.ndarray:
        """Without a replicate column: a treatment's plates numbered 1, 2, .. in plate order."""
        treatment = fields["compound"] + "\t" + fields["concentration"].astype(str)
        rank = {}
        for key, group in fields.groupby(treatment)["plate"]:
            for number, plate in enumerate(sorted(set(group)), start=1):
                rank[(key, plate)] = number
        return np.array([rank[(k, p)] for k, p in zip(treatment, fields["plate"])], dtype=int)

    def _files(self, images: pd.DataFrame, out: pd.DataFrame, src: str) -> None:
        names = channel_columns(images.columns, "FileName")
        folders = channel_columns(images.columns, "PathName")
        absent = [c for c in self.channels if c not in names]
        if absent:
            raise ScreenError(
                f"{src}: no FileName_ column for channel(s) {', '.join(absent)} (data.channels); "
                f"its channels are {', '.join(names) or 'none'}. Fix data.channels or the CSV's columns"
            )
        for channel in self.channels:
            files = images[names[channel]].astype(str).str.strip()
            empty = (files == "") | (files.str.lower() == "nan")
            if empty.any():
                index = int(np.flatnonzero(empty.values)[0])
                row = out.iloc[index]
                raise ScreenError(
                    f"{src} line {line_of(images.index[index])}: plate {row['plate']} well {row['well']} site "
                    f"{row['site']} has no {channel} image ({names[channel]} is empty; {int(empty.sum())} row(s) in all). "
                    "Fix: fill it in, or remove the field's row"
                )
            paths = (
                images[folders[channel]].astype(str).str.strip()
                if channel in folders
                else pd.Series([""] * len(images), index=images.index)
            )
            out[f"source_{channel}"] = [
                _join_location(self.image_root, f, n) for f, n in zip(paths, files)
            ]
            out[f"file_{channel}"] = (
                out["plate"] + "/" + [posixpath.basename(n.replace("\\", "/")) for n in files]
            )
        per_channel = [
            (out["plate"][i], out[f"file_{c}"][i], out[f"source_{c}"][i], images.index[i])
            for i in range(len(out))
            for c in self.channels
        ]
        stored = pd.DataFrame(per_channel, columns=["plate", "file", "source", "row"])
        clash = stored.drop_duplicates(["file", "source"]).duplicated("file", keep=False)
        if clash.any():
            first = stored.drop_duplicates(["file", "source"])[clash].iloc[0]
            rows = stored[stored["file"] == first["file"]]["row"].unique()[:3]
            raise ScreenError(
                f"{src} lines {', '.join(str(line_of(r)) for r in rows)}: two different images of plate "
                f"{first['plate']} have the file name {first['file'].split('/', 1)[1]}; cellmoa keeps a plate's "
                "images in one folder, so file names must be unique within a plate. Fix: rename one"
            )
        shared = stored.duplicated("source", keep=False)
        if shared.any():
            first = stored[shared].iloc[0]
            rows = stored[stored["source"] == first["source"]]["row"].unique()[:3]
            raise ScreenError(
                f"{src} lines {', '.join(str(line_of(r)) for r in rows)}: the image {first['source']} is listed "
                "for more than one field or channel. Fix the FileName_/PathName_ columns"
            )

    def plate_sources(self, metadata: pd.DataFrame, plate: str) -> list[tuple[str, str, int]]:
        """``(stored name relative to the plate folder, source location, CSV line)`` of every image
        of a plate, in table order."""
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


__all__ = ["LoadData", "ScreenError", "channel_columns", "read_table"]
