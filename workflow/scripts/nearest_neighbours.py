"""Rule nearest_neighbours: 1-nearest-neighbour MoA matching of treatment profiles (mean
embeddings), NSC and NSCB, each held-out compound matched with its own fold model's embeddings."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from cellmoa.logs import job_logging

job_logging(snakemake.log[0])
import h5py

from cellmoa.profiles import fold_matches
from cellmoa.tensors import read_metadata
from cellmoa.training import write_tsv

metadata = read_metadata(Path(snakemake.input.tensors))
embeddings = {}
for compound, path in zip(snakemake.params.compounds, snakemake.input.embeddings):
    with h5py.File(path, "r") as f:
        embeddings[compound] = f["embeddings"][()]
write_tsv(fold_matches(metadata, embeddings), Path(snakemake.output.matches))
