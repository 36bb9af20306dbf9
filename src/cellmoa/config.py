"""The workflow's config resolved in Python: what a run makes, decided before any job.

Snakemake validates the config (``config/*.yaml``) against ``workflow/schemas/config.schema.yaml``
and fills the schema's defaults; :func:`plan` turns that config into a :class:`Plan`: the dataset
adapter with its resolved ``data:`` settings, the plates, the networks and their resolved training
settings, the folds, the crop geometry and the files the run makes. What the config leaves to the
dataset is decided here (``data.base_url``, a synthetic screen's tables, the folds' compounds,
``training.head`` and ``training.input_channels``, ``prediction.unannotated``), and every check
across keys raises a :class:`ValueError` naming the key and the fix, before any job runs.

``workflow/rules/common.smk`` builds ``PLAN = plan(config)`` once, the rules read it, and a rule
script that needs the dataset calls :func:`cellmoa.data.resolve.resolve_dataset` on
``snakemake.config``. The config is
never changed: the plan holds its own copies.

Examples
--------
A config as Snakemake's validation leaves it (here only the keys :func:`plan` reads):

>>> config = {
...     "dataset": "bbbc014",
...     "data": {"plates": ["BBBC014_v1_images"]},
...     "preprocessing": {},
...     "training": {"networks": ["ResNet50"], "fold_models": True,
...                  "folds": {"held_out": ["MCF7", "A549"]}},
...     "prediction": {"unannotated": None},
... }
>>> run = plan(config)
>>> run.fold_scheme, run.folds, run.predict_unannotated
('cell_line', {'mcf7': 'MCF7', 'a549': 'A549'}, False)
>>> run.training["ResNet50"].head, run.crops
('sigmoid', {'rows': 4, 'cols': 4, 'resize': [1024, 1024]})
>>> run.outputs[:2]
['results/tables/accuracy_ResNet50.tsv', 'results/tables/accuracy_by_fold_ResNet50.tsv']
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from cellmoa.columns import ENSEMBLE
from cellmoa.data.datasets import Dataset, get_dataset
from cellmoa.data.resolve import resolve_data
from cellmoa.data.synthetic import spec_for
from cellmoa.features.baseline import BASELINE
from cellmoa.preprocess.settings import TensorSettings
from cellmoa.train.folds import ALL_FOLD, folds_from_config
from cellmoa.train.settings import TrainSettings

#: the leave-one-compound-out fold schemes (the others hold out something else: a cell line)
COMPOUND_SCHEMES = ("nsc", "nscb")


@dataclass(frozen=True)
class Plan:
    """What a run makes, resolved from a validated config by :func:`plan`.

    The lists and dicts are the plan's own (never the config's); a rule passes them as
    ``params`` as they are (a list or dict, so that Snakemake compares them between runs).
    """

    #: the dataset adapter, configured with :attr:`data`
    dataset: Dataset
    #: the ``data:`` section with what the dataset decides filled in (``base_url``; a synthetic
    #: screen's ``loaddata``, ``treatments``, ``moas``, ``channels``, ``control``, ``batch_column``)
    data: dict
    #: whether a ``synthetic:`` section asks for a synthesized dataset in ``data.base_url``
    synthetic: bool
    plates: list[str]
    networks: list[str]
    #: fold slug (the ``{fold}`` wildcard) -> the compound or cell line the fold holds out
    folds: dict[str, str]
    fold_scheme: str
    #: whether the all-compound fold predicts the unannotated compounds
    predict_unannotated: bool
    #: :attr:`folds`, then the all-compound fold where :attr:`predict_unannotated`
    trained_folds: dict[str, str]
    #: the trained folds whose model is kept (``training.fold_models``; the all-compound one always)
    model_folds: list[str]
    #: network -> its training settings (``training:`` with ``per_network`` overrides; ``head``
    #: and ``input_channels`` default to the dataset's)
    training: dict[str, TrainSettings]
    #: the crop geometry of the tensors: ``rows``, ``cols``, ``resize`` (a list, or None); with
    #: single-cell crops also ``mode`` ("cells"), ``cell_size`` and ``max_cells``
    crops: dict
    #: the dataset's folder under resources/
    resources: str
    #: metadata file name -> where it is downloaded to
    metadata_files: dict[str, str]
    #: the classical baseline scored beside the networks (``profiles.baseline``), or None
    baseline: str | None = None

    @property
    def scored(self) -> list[str]:
        """The networks, then the baseline: every name that gets accuracy and matching tables."""
        return [*self.networks, *([self.baseline] if self.baseline else [])]

    def baseline_tables(self, kind: str) -> list[str]:
        """The baseline's matching table of ``kind``, where there are a baseline and matching."""
        if not self.matching or not self.baseline:
            return []
        return [f"results/tables/{kind}_{self.baseline}.tsv"]

    @property
    def baseline_outputs(self) -> list[str]:
        """The baseline's well profiles and the segmentation QC figure (with a baseline)."""
        if not self.baseline:
            return []
        return [f"results/profiles/{self.baseline}.parquet", "results/plots/segmentation.png"]

    @property
    def base_url(self) -> str:
        """Where the dataset is fetched from (or synthesized into): ``data.base_url``."""
        return self.data["base_url"]

    @property
    def raw_dir(self) -> str | None:
        """``data.raw_dir``, the plates already on disk, or None (they are downloaded)."""
        return self.data.get("raw_dir")

    @property
    def matching(self) -> bool:
        """Whether nearest-neighbour matching of treatment profiles makes sense (the dataset's)."""
        return self.dataset.nearest_neighbours

    @property
    def ensemble(self) -> str | None:
        """The ensemble's name in table names where there are several networks, else None."""
        return ENSEMBLE if len(self.networks) > 1 else None

    @property
    def prediction_names(self) -> list[str]:
        """The unannotated tables' names: every network, and the ensemble of several."""
        return [*self.networks, *([self.ensemble] if self.ensemble else [])]

    def matching_tables(self, kind: str) -> list[str]:
        """Every network's matching table of ``kind``, where there is matching.

        ``kind`` is ``nearest_neighbours`` or ``average_precision``; no tables without matching.
        """
        if not self.matching:
            return []
        return [f"results/tables/{kind}_{network}.tsv" for network in self.networks]

    def ensemble_tables(self, kind: str) -> list[str]:
        """The ensemble's matching table of ``kind``, where there are networks to ensemble.

        None with one network, or without matching.
        """
        if not self.matching or not self.ensemble:
            return []
        return [f"results/tables/{kind}_{self.ensemble}.tsv"]

    @property
    def profile_maps(self) -> list[str]:
        """The report's Profiles page, where there is matching.

        NSC, NSCB and mAP of every network, and a map of treatment profiles per network.
        """
        if not self.matching:
            return []
        return [
            "results/plots/matching.png",
            *(f"results/plots/profiles_{network}.png" for network in self.networks),
        ]

    @property
    def unannotated_outputs(self) -> list[str]:
        """The unannotated compounds' tables and figures (:attr:`predict_unannotated`)."""
        if not self.predict_unannotated:
            return []
        return [
            *(f"results/tables/unannotated_{name}.tsv" for name in self.prediction_names),
            "results/tables/calibration.tsv",
            "results/plots/unannotated.png",
            "results/plots/calibration.png",
        ]

    @property
    def landing_calls(self) -> list[str]:
        """The unannotated table on the report's landing page: the ensemble's, else the network's.

        None without unannotated prediction.
        """
        if not self.predict_unannotated:
            return []
        return [f"results/tables/unannotated_{self.prediction_names[-1]}.tsv"]

    @property
    def gallery_embeddings(self) -> str:
        """The embeddings the cell galleries pick typical crops with.

        The first network's all-compound fold where it is trained, else its first fold.
        """
        fold = ALL_FOLD if ALL_FOLD in self.trained_folds else next(iter(self.folds))
        return f"results/models/{self.networks[0]}/{fold}/embeddings.h5"

    #: the cell galleries (:mod:`cellmoa.report.gallery`)
    GALLERIES = (
        "results/plots/gallery_moas.png",
        "results/plots/gallery_misclassified.png",
        "results/plots/gallery_unannotated.png",
    )

    @property
    def profile_exports(self) -> list[str]:
        """Every network's well and treatment profiles in pycytominer's layout (Parquet).

        From the all-compound fold's model: only where it is trained (``prediction.unannotated``).
        """
        if ALL_FOLD not in self.trained_folds:
            return []
        return [
            f"results/profiles/{network}{kind}.parquet"
            for network in self.networks
            for kind in ("", "_treatments")
        ]

    @property
    def outputs(self) -> list[str]:
        """Every file the run makes by default (the ``all`` rule's input)."""
        per_network = ("accuracy", "accuracy_by_fold", "treatments")
        return [
            *(f"results/tables/{t}_{n}.tsv" for t in per_network for n in self.scored),
            "results/tables/summary.tsv",
            "results/plots/accuracy.png",
            "results/report/landing.html",
            *self.GALLERIES,
            *self.profile_maps,
            *self.unannotated_outputs,
            *self.profile_exports,
            *self.baseline_outputs,
        ]


def plan(config: dict) -> Plan:
    """Resolve a validated workflow config into the run's :class:`Plan`.

    Parameters
    ----------
    config : dict
        The config as Snakemake's ``validate(config, schema, set_default=True)`` leaves it. It is
        not changed.

    Returns
    -------
    Plan
        The dataset, plates, networks, folds, training settings, crop geometry and outputs.

    Raises
    ------
    ValueError
        A setting that contradicts another one, or one that is missing where nothing else can
        decide it; the message names the key and the fix.
    """
    data = resolve_data(config)
    dataset = get_dataset(config["dataset"], data)
    synthetic = "synthetic" in config
    plates = _plates(config, data, dataset)
    if not dataset.archives and "raw_dir" in data:
        raise ValueError(
            "config: data.raw_dir does not apply to dataset loaddata: its images are where the "
            "LoadData CSV's PathName_/FileName_ columns say (relative folders from "
            "data.image_root)"
        )
    if synthetic and "://" in data["base_url"]:
        raise ValueError(
            "config: with a synthetic: section, data.base_url must be a local folder to write the "
            f"synthesized dataset to, not the URL {data['base_url']!r}"
        )
    section = config["training"]
    networks = list(section["networks"])
    scheme = section["folds"].get("scheme", dataset.fold_schemes[0])
    training = _training(section, networks, scheme, dataset)
    folds = folds_from_config(_folds_section(config, scheme, dataset), dataset)
    unannotated = config["prediction"]["unannotated"]
    if unannotated is None:
        unannotated = dataset.predicts_unannotated and scheme in COMPOUND_SCHEMES
    elif unannotated and scheme not in COMPOUND_SCHEMES:
        raise ValueError(
            f"config: prediction.unannotated needs a leave-one-compound-out fold scheme (nsc, "
            f"nscb), not {scheme}; set prediction.unannotated: false"
        )
    # the folds a training job trains: the leave-one-out ones, then the all-compound fold that
    # predicts the unannotated compounds
    trained = {**folds, **({ALL_FOLD: ALL_FOLD} if unannotated else {})}
    geometry = TensorSettings.from_config(config["preprocessing"], dataset).crops
    resources = f"resources/{dataset.name}"
    return Plan(
        dataset=dataset,
        data=data,
        synthetic=synthetic,
        plates=plates,
        networks=networks,
        folds=folds,
        fold_scheme=scheme,
        predict_unannotated=bool(unannotated),
        trained_folds=trained,
        model_folds=[f for f in trained if f == ALL_FOLD or section["fold_models"]],
        training=training,
        crops=_crops(config["preprocessing"], geometry),
        resources=resources,
        metadata_files={name: f"{resources}/metadata/{name}" for name in dataset.metadata_files()},
        baseline=BASELINE if config.get("profiles", {}).get("baseline") == "cellprofiler" else None,
    )


def _crops(preprocessing: dict, geometry) -> dict:
    """The tensors' crop settings (the tensors rule's params): the grid, and single-cell crops'."""
    crops = {
        "rows": geometry.rows,
        "cols": geometry.cols,
        "resize": list(geometry.field_size) if geometry.field_size else None,
    }
    section = preprocessing.get("crops") or {}
    if section.get("mode", "fields") == "cells":
        crops.update(
            mode="cells",
            cell_size=int(section.get("cell_size", 96)),
            max_cells=int(section.get("max_cells", 0)),
        )
    return crops


def _plates(config: dict, data: dict, dataset: Dataset) -> list[str]:
    """``data.plates``, else the synthesized dataset's, else a local LoadData CSV's."""
    if "plates" in data:
        return list(data["plates"])
    if "synthetic" in config:
        return spec_for(dataset.name, config["synthetic"]).plates()
    if not dataset.archives:
        return dataset.local_plates()
    raise ValueError(
        "config: data.plates is required (the plates to process) unless a synthetic: section "
        "is given"
    )


def _training(
    section: dict, networks: list[str], scheme: str, dataset: Dataset
) -> dict[str, TrainSettings]:
    """Each network's training settings, checked before any job runs.

    ``head`` and ``input_channels`` are the dataset's unless the config gives them.
    """
    resolved = {
        **section,
        "head": section.get("head", dataset.head),
        "input_channels": section.get("input_channels", list(dataset.network_channels)),
        "folds": {**section["folds"], "scheme": scheme},
    }
    settings = {}
    for network in networks:
        try:
            settings[network] = TrainSettings.from_config(resolved, network)
        except (TypeError, ValueError) as error:
            raise ValueError(f"config: training ({network}): {error}") from error
    return settings


def _folds_section(config: dict, scheme: str, dataset: Dataset) -> dict:
    """A copy of ``training.folds`` with its scheme and, by default, its compounds.

    A compound scheme without ``held_out`` or ``compounds`` leaves out every annotated compound
    in turn, where they are known before the run (a synthetic spec's, a local MoA table's).
    """
    folds = {**copy.deepcopy(config["training"]["folds"]), "scheme": scheme}
    if not (folds.get("held_out") or folds.get("compounds")) and scheme in COMPOUND_SCHEMES:
        annotated = (
            spec_for(dataset.name, config["synthetic"]).compounds
            if "synthetic" in config
            else dataset.annotated_compounds()
        )
        if annotated:
            folds["compounds"] = list(annotated)
    return folds
