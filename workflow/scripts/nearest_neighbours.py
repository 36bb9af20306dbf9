"""Rule nearest_neighbours: 1-NN MoA matching (NSC, NSCB) and mAP of one network's profiles.

1-nearest-neighbour MoA matching and average precision of MoA retrieval (copairs) of treatment
profiles (mean embeddings), each held-out compound matched with its own fold model's embeddings;
control crops are left out. With profiles.postprocess, the same from the post-processed well
profiles too (fit on the control crops' wells), and what each step did in
results/tables/postprocessing_<network>.tsv.
"""

from rule_setup import start

start(snakemake)

from pathlib import Path

import h5py

from cellmoa.data.resolve import resolve_dataset
from cellmoa.files import write_tsv
from cellmoa.preprocess.tensors import read_crop_metadata
from cellmoa.profiles.chains import chain_spec, parse_chain
from cellmoa.profiles.nearest import fold_matches

metadata = read_crop_metadata(Path(snakemake.input.tensors))
embeddings = {}
for compound, path in zip(snakemake.params.compounds, snakemake.input.embeddings):
    with h5py.File(path, "r") as f:
        embeddings[compound] = f["embeddings"][()]
chain = parse_chain(chain_spec(snakemake.params.postprocess, "none")[1])
control = resolve_dataset(snakemake.config).control
matches, average_precision, notes = fold_matches(metadata, embeddings, chain=chain, control=control)
write_tsv(matches, Path(snakemake.output.matches))
write_tsv(average_precision, Path(snakemake.output.average_precision))
write_tsv(notes, Path(snakemake.output.postprocessing))
