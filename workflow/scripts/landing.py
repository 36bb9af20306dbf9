"""Rule landing: the report's landing page (cellmoa.report.landing)."""

from rule_setup import start

start(snakemake)

import logging
from pathlib import Path

from cellmoa.files import atomic_path, read_tsv
from cellmoa.report.landing import landing_html

calls = [Path(p) for p in snakemake.input.calls]
page = landing_html(
    read_tsv(Path(snakemake.input.summary)),
    Path(snakemake.input.plot),
    read_tsv(calls[0]) if calls else None,
    calls[0].stem.removeprefix("unannotated_") if calls else "",
    snakemake.params.dataset,
)
with atomic_path(Path(snakemake.output.page)) as tmp:
    tmp.write_text(page)
logging.getLogger("landing").info("landing page: %d characters", len(page))
