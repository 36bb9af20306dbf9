"""Rule unannotated: MoA predictions for the treatments of unannotated compounds.

By each network's all-compound fold (and by the networks' ensemble), with split-conformal
prediction sets calibrated on the leave-one-compound-out treatment tables, a novel flag and the
nearest annotated treatments; the calibration table (coverage vs nominal level) and the
report's two figures.
"""

from rule_setup import start

start(snakemake)

import logging
from pathlib import Path

import h5py

from cellmoa.data.resolve import resolve_dataset
from cellmoa.evaluate.unannotated import predict_screen
from cellmoa.files import read_tsv, write_tsv
from cellmoa.preprocess.tensors import read_crop_metadata
from cellmoa.profiles.chains import chain_spec, parse_chain
from cellmoa.report.plots import plot_calibration, plot_unannotated

p = snakemake.params
inputs = snakemake.input
log = logging.getLogger("unannotated")


def by_network(files, name):
    """The file of ``files`` for ``name``.

    results/models/<network>/all/... or ..._<network>.tsv.
    """
    for f in files:
        if Path(f).parts[-3] == name or Path(f).stem.endswith(f"_{name}"):
            return f
    return None


metadata = read_crop_metadata(Path(inputs.tensors))
networks = {}
for network in p.networks:
    with h5py.File(by_network(inputs.embeddings, network), "r") as f:
        embeddings = f["embeddings"][()]
    matches = by_network(inputs.matches, network)
    networks[network] = {
        "treatments": read_tsv(by_network(inputs.treatments, network)),
        "predictions": read_tsv(by_network(inputs.predictions, network)),
        "embeddings": embeddings,
        "matches": read_tsv(matches) if matches else None,
    }
ensemble_matches = by_network(inputs.matches, p.ensemble)
tables, calibration = predict_screen(
    metadata,
    networks,
    p.coverage,
    p.score,
    p.neighbours,
    parse_chain(chain_spec(p.postprocess, "none")[1]),
    resolve_dataset(snakemake.config).control,
    p.ensemble,
    read_tsv(ensemble_matches) if ensemble_matches else None,
)
for path in snakemake.output.tables:
    name = Path(path).stem[len("unannotated_") :]
    write_tsv(tables[name], Path(path))
    novel = int(tables[name]["novel"].sum())
    log.info(
        "%s: %d unannotated treatment(s), %d flagged novel, mean set size %.2f at coverage %g",
        name,
        len(tables[name]),
        novel,
        tables[name]["set_size"].mean(),
        p.coverage,
    )
write_tsv(calibration, Path(snakemake.output.calibration))
shown = p.ensemble if p.ensemble in tables else p.networks[0]
plot_unannotated(
    tables[shown],
    f"{shown}: unannotated treatments (most confident first), coverage {p.coverage:g}",
    Path(snakemake.output.heatmap),
)
plot_calibration(calibration, Path(snakemake.output.calibration_plot))
