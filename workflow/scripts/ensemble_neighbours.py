"""Rule ensemble_neighbours: 1-NN matching (NSC, NSCB) and mAP of the networks' ensemble.

In each fold, every network's treatment profiles (raw, and post-processed network by network
with profiles.postprocess) are scaled to unit length and concatenated, so that the ensemble's
cosine similarity is the mean of the networks'.
"""

from rule_setup import start

start(snakemake)

from pathlib import Path

import h5py

from cellmoa.data.resolve import resolve_dataset
from cellmoa.files import write_tsv
from cellmoa.preprocess.tensors import read_crop_metadata
from cellmoa.profiles.chains import chain_spec, parse_chain
from cellmoa.profiles.ensemble import ensemble_fold_matches

p = snakemake.params
metadata = read_crop_metadata(Path(snakemake.input.tensors))
embeddings = {network: {} for network in p.networks}
for path in snakemake.input.embeddings:  # results/models/<network>/<fold>/embeddings.h5
    network, fold = Path(path).parts[-3:-1]
    with h5py.File(path, "r") as f:
        embeddings[network][p.folds[fold]] = f["embeddings"][()]
chain = parse_chain(chain_spec(p.postprocess, "none")[1])
control = resolve_dataset(snakemake.config).control
matches, average_precision, notes = ensemble_fold_matches(
    metadata, embeddings, chain=chain, control=control
)
write_tsv(matches, Path(snakemake.output.matches))
write_tsv(average_precision, Path(snakemake.output.average_precision))
write_tsv(notes, Path(snakemake.output.postprocessing))
