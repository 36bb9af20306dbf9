"""Rule features.

CellProfiler's measurements (cp-measure) of every cell of the plate's usable fields, aggregated
per well by the median (cellmoa.features.jobs): results/features/<plate>.parquet.
"""

from rule_setup import start

start(snakemake)

from pathlib import Path

from plate_setup import stored_fields

from cellmoa.features.jobs import measure_plate
from cellmoa.features.measure import FeatureSettings
from cellmoa.files import read_tsv, write_parquet
from cellmoa.preprocess.illumination import read_illumination
from cellmoa.segment.qc import usable_fields

p = snakemake.params
_, plate = stored_fields(snakemake)
wells = measure_plate(
    Path(snakemake.input.labels),
    plate,
    read_illumination(Path(snakemake.input.function)),
    FeatureSettings(**p.features),
    usable=usable_fields(read_tsv(snakemake.input.qc)),
)
write_parquet(wells, Path(snakemake.output.wells))
