"""Rule segment.

Nuclei and cells of every field of the plate that the tensors store (cellmoa.segment.jobs): the
labels to results/segmentation/<plate>.h5, one row per object to <plate>.objects.parquet and one
QC record per field to <plate>.qc.tsv (fields with no or absurd segmentation flagged, and left
out of the features).
"""

from rule_setup import start

start(snakemake)

from pathlib import Path

from plate_setup import stored_fields

from cellmoa.files import read_tsv, write_parquet, write_tsv
from cellmoa.preprocess.illumination import read_illumination
from cellmoa.preprocess.images import BadImages
from cellmoa.segment.jobs import segment_plate, segmentation_channels
from cellmoa.segment.settings import SegmentationSettings

p = snakemake.params
dataset, plate = stored_fields(snakemake)
section = dict(p.segmentation)
nucleus, cell = segmentation_channels(
    dataset.channels, section.pop("nucleus_channel", None), section.pop("cell_channel", None)
)
bad = BadImages(skip=p.on_bad_image == "skip")
bad.records.extend(read_tsv(snakemake.input.skipped_before).to_dict("records"))
objects, qc = segment_plate(
    Path(snakemake.output.labels),
    plate,
    read_illumination(Path(snakemake.input.function)),
    SegmentationSettings(**section),
    nucleus,
    cell,
    bad=bad,
    prefetch=snakemake.threads - 1,
)
write_parquet(objects, Path(snakemake.output.objects))
write_tsv(qc, Path(snakemake.output.qc))
