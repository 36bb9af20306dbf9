"""Rule summary: one row per network (treatment and crop accuracy) across all folds."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from cellmoa.logs import job_logging

job_logging(snakemake.log[0])

import logging

import pandas as pd

from cellmoa.reporting import format_table, read_tsv, summarize
from cellmoa.training import write_tsv

p = snakemake.params
by_network = {
    network: pd.concat(
        [read_tsv(f) for f in snakemake.input.predictions if Path(f).parts[-3] == network],
        ignore_index=True,
    )
    for network in p.networks
}
table = summarize(by_network, p.scheme, p.dataset)
write_tsv(table, Path(snakemake.output.summary))
logging.getLogger("summary").info("\n%s", format_table(table))
