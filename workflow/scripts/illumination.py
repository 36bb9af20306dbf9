"""Rule illumination: check the plate's files against their manifest, then compute the
illumination function of every channel of the plate and, in the same read, the statistics of the
plate's corrected reference fields (per cell line) that the tensors job standardises with."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from cellmoa.logs import job_logging

job_logging(snakemake.log[0])

from cellmoa.datasets import get_dataset
from cellmoa.download import verify_manifest
from cellmoa.illumination import IlluminationParams, plot_functions
from cellmoa.tensors import BadImages, illumination_pass, write_illumination

p = snakemake.params
plate = snakemake.wildcards.plate
dataset = get_dataset(p.dataset)
metadata_dir = Path(snakemake.input.metadata[0]).parent
raw_dir = Path(snakemake.input.images).parent
# the downloaded (or checked) files must not have changed since their manifests were written
verify_manifest(Path(snakemake.input.metadata_manifest), metadata_dir)
verify_manifest(Path(snakemake.input.manifest), raw_dir)
metadata = dataset.read_metadata(metadata_dir)
rows = metadata[metadata["plate"] == plate]
params = IlluminationParams.from_dict(p.illumination)
bad = BadImages(skip=p.on_bad_image == "skip")
functions, reference_stats = illumination_pass(
    rows, raw_dir, dataset.channels, params, bad, reference=dataset.reference(rows),
    prefetch=max(0, snakemake.threads - 1),
)
bad.table().to_csv(snakemake.output.skipped, sep="\t", index=False)
write_illumination(Path(snakemake.output.function), plate, functions, params, reference_stats)
plot_functions(functions, f"Illumination functions of plate {plate}", Path(snakemake.output.qc))
