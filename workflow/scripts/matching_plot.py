"""Rule matching_plot: NSC, NSCB and mAP of every network and the ensemble.

Raw profiles beside post-processed ones (the report's Profiles page).
"""

from rule_setup import start

start(snakemake)

from pathlib import Path

from cellmoa.files import read_tsv
from cellmoa.report.plots import plot_matching

plot_matching(read_tsv(Path(snakemake.input.summary)), Path(snakemake.output.plot))
