"""Rule segmentation_qc.

The segmentation's QC figure: nuclei per field and nucleus areas over every plate, and three
fields of the first plate outlined (cellmoa.report.segmentation).
"""

from rule_setup import start

start(snakemake)

from pathlib import Path

import pandas as pd

from cellmoa.data.resolve import resolve_dataset
from cellmoa.files import read_tsv
from cellmoa.preprocess.illumination import read_illumination
from cellmoa.preprocess.images import read_channels
from cellmoa.preprocess.normalization import corrected_field
from cellmoa.report.segmentation import outlined, plot_segmentation_qc
from cellmoa.segment.store import read_attributes, read_fields

dataset = resolve_dataset(snakemake.config)
metadata = dataset.read_metadata(Path(snakemake.input.metadata[0]).parent)
qc = pd.concat([read_tsv(f) for f in snakemake.input.qc], ignore_index=True)
objects = pd.concat([pd.read_parquet(f) for f in snakemake.input.objects], ignore_index=True)
attrs = read_attributes(snakemake.input.labels)
nucleus = attrs["nucleus_channel"]
functions = read_illumination(Path(snakemake.input.function))
rows = metadata[metadata["plate"] == attrs["plate"]]
rows = rows.set_index(rows["image_number"].astype(int))
raw_dir = Path(snakemake.input.images).parent
examples = []
for field in read_fields(snakemake.input.labels):
    if len(examples) == 3:
        break
    if field["well"] in {title.split()[1] for title, _ in examples}:
        continue  # three different wells
    row = rows.loc[field["image_number"]]
    dna = corrected_field(read_channels(row, raw_dir, [nucleus]), [nucleus], functions)[..., 0]
    title = f"{row['plate']} {field['well']} site {field['site']}: {row['compound']}"
    examples.append((title, outlined(dna, field["nuclei"], field["cells"])))
plot_segmentation_qc(qc, objects, examples, Path(snakemake.output.plot))
