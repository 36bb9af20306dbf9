"""Rule ensemble_neighbours: nearest-neighbour matching (NSC, NSCB) and average precision of the
networks' ensemble - in each fold, every network's treatment profiles (raw, and post-processed
network by network with profiles.postprocess) scaled to unit length and concatenated, so that the
ensemble's cosine similarity is the mean of the networks'."""

from rule_setup import start

start(snakemake)

from pathlib import Path

import h5py

from cellmoa.data.datasets import dataset_from_config
from cellmoa.files import write_tsv
from cellmoa.preprocess.tensors import read_crop_metadata
from cellmoa.profiles.matching import ensemble_fold_matches
from cellmoa.profiles.postprocessing import parse_chain

p = snakemake.params
metadata = read_crop_metadata(Path(snakemake.input.tensors))
embeddings = {network: {} for network in p.networks}
for path in snakemake.input.embeddings:  # results/models/<network>/<fold>/embeddings.h5
    network, fold = Path(path).parts[-3:-1]
    with h5py.File(path, "r") as f:
        embeddings[network][p.folds[fold]] = f["embeddings"][()]
chain = parse_chain(p.postprocess)
control = dataset_from_config(snakemake.config).control
matches, average_precision, notes = ensemble_fold_matches(
    metadata, embeddings, chain=chain, control=control
)
write_tsv(matches, Path(snakemake.output.matches))
write_tsv(average_precision, Path(snakemake.output.average_precision))
write_tsv(notes, Path(snakemake.output.postprocessing))
