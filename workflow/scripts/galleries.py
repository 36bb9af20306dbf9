"""Rule galleries: the cell galleries of the report (cellmoa.report.gallery)."""

from rule_setup import start

start(snakemake)

import logging
from pathlib import Path

import h5py

from cellmoa.files import read_tsv
from cellmoa.preprocess.tensors import read_crop_metadata
from cellmoa.report import gallery

tensors = Path(snakemake.input.tensors)
metadata = read_crop_metadata(tensors)
with h5py.File(snakemake.input.embeddings, "r") as f:
    embeddings = f["embeddings"][()]
network = snakemake.params.network
fold = Path(snakemake.input.embeddings).parent.name
source = f"typical crops: nearest the median {network} embedding ({fold} fold)"
calls = read_tsv(Path(snakemake.input.calls[0])) if snakemake.input.calls else None
drawn = {
    "moas": (gallery.moa_rows(metadata, embeddings), f"Each MoA's {source}"),
    "misclassified": (
        gallery.misclassified_rows(
            metadata, embeddings, read_tsv(Path(snakemake.input.treatments))
        ),
        f"{network}'s misclassified treatments beside their true and called MoA; {source}",
    ),
    "unannotated": (
        gallery.unannotated_rows(metadata, embeddings, calls) if calls is not None else [],
        "Unannotated treatments beside their nearest annotated treatment and top MoA; " + source,
    ),
}
log = logging.getLogger("galleries")
for name, (rows, title) in drawn.items():
    out = Path(getattr(snakemake.output, name))
    gallery.draw(rows, tensors, title, out)
    log.info("%s: %d rows, %.1f MB", out, len(rows), out.stat().st_size / 1e6)
