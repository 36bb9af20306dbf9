# cellmoa: raw microscopy plates -> illumination-corrected HDF5 tensors -> per-fold training of
# ImageNet-pretrained CNNs -> treatment-level MoA accuracy tables.
#
#   snakemake --cores 8                                  (profiles/default caps GPU jobs at 1)
#   snakemake --configfile config/demo.yaml --cores 2    (the synthetic demo; see `make demo`)
#   snakemake --profile profiles/slurm                   (SLURM; see README)


from snakemake.utils import min_version

min_version("9.0")


# The paper's BBBC021 run is the default; a --configfile given on the command line (such as
# config/demo.yaml) replaces it instead of being merged into it.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# The report (snakemake --report results/report.html) opens on this description, which embeds the
# landing page (rule landing: summary, accuracy figure, unannotated calls).
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/segment.smk"
include: "workflow/rules/profiles.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
