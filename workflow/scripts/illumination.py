"""Rule illumination.

Check the plate's files against their manifest, then compute the illumination function of every
channel of the plate and, in the same read, the statistics of the plate's corrected reference fields
(per cell line) that the tensors job standardises with.
"""

from rule_setup import start

start(snakemake)

import logging
from pathlib import Path

from cellmoa.data.manifests import verify_manifest
from cellmoa.data.resolve import resolve_dataset
from cellmoa.files import write_tsv
from cellmoa.preprocess.illumination import IlluminationParams, IlluminationQC, write_illumination
from cellmoa.preprocess.images import BadImages
from cellmoa.preprocess.jobs import illumination_pass
from cellmoa.report.plots import plot_illumination

p = snakemake.params
plate = snakemake.wildcards.plate
dataset = resolve_dataset(snakemake.config)
metadata_dir = Path(snakemake.input.metadata[0]).parent
raw_dir = Path(snakemake.input.images).parent
# the downloaded (or checked) files must not have changed since their manifests were written
verify_manifest(Path(snakemake.input.metadata_manifest), metadata_dir)
verify_manifest(
    Path(snakemake.input.manifest),
    raw_dir,
    origin="raw_dir" if snakemake.config["data"].get("raw_dir") else "download",
)
metadata = dataset.read_metadata(metadata_dir)
rows = metadata[metadata["plate"] == plate]
params = IlluminationParams.from_dict(p.illumination)
bad = BadImages(skip=p.on_bad_image == "skip")
functions, reference_stats = illumination_pass(
    rows,
    raw_dir,
    dataset.channels,
    params,
    bad,
    reference=dataset.reference(rows),
    prefetch=max(0, snakemake.threads - 1),
)
write_tsv(bad.table(), Path(snakemake.output.skipped))
write_illumination(Path(snakemake.output.function), plate, functions, params, reference_stats)
# QC thresholds are read from the config (not params): changing them must not recompute the plate
qc = IlluminationQC.from_dict(snakemake.config["preprocessing"].get("illumination_qc"))
n_fields = len(rows) - len({r.get("image_number") for r in bad.records})
checks = qc.check(functions, n_fields)
write_tsv(checks, Path(snakemake.output.checks))
warned = checks[checks["warnings"] != ""]
for _, row in warned.iterrows():
    logging.getLogger("illumination").warning(
        "%s %s: illumination QC: %s", plate, row["channel"], row["warnings"]
    )
title = f"Illumination functions of plate {plate}"
if len(warned):
    title += (
        f"\nQC warnings ({', '.join(warned['channel'])}): see {Path(snakemake.output.checks).name}"
    )
plot_illumination(functions, title, Path(snakemake.output.qc))
