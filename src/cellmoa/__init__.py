"""cellmoa: mechanism-of-action prediction from high-content microscopy with pretrained CNNs.

The package holds the domain logic of the Snakemake workflow; the rule scripts in
``workflow/scripts`` only read the ``snakemake`` object and call it. One stage package per rule
file of ``workflow/rules`` (each package's docstring lists its modules), layered: a package imports
only from the packages above it in this list.

- base modules: :mod:`cellmoa.columns` (the ``Metadata_*`` vocabulary), :mod:`cellmoa.files`
  (atomic writes, tables), :mod:`cellmoa.logs` (per-job logging), :mod:`cellmoa.validation`
  (what every table must satisfy before it is scored), :mod:`cellmoa.intervals` (confidence
  intervals of accuracies)
- :mod:`cellmoa.data` (``data.smk``): datasets, downloads, archives, manifests, synthetic data
- :mod:`cellmoa.preprocess` (``preprocess.smk``): illumination correction, crops, HDF5 tensors
- :mod:`cellmoa.segment` (no rule yet, a preview): nuclei and cells in a field
- :mod:`cellmoa.train` (``train.smk``): networks, folds, input pipelines, training, embeddings
- :mod:`cellmoa.profiles` (``profiles.smk``): post-processing, NSC/NSCB matching, mAP
- :mod:`cellmoa.evaluate` (``evaluate.smk``): treatment accuracy, conformal calls for
  unannotated compounds
- :mod:`cellmoa.report` (``report.smk``): summary tables and figures
- :mod:`cellmoa.config` (``common.smk``): the validated config resolved into the run's plan
- :mod:`cellmoa.cli`: the ``cellmoa`` command (:mod:`cellmoa.cli_profiles`: its profile-table
  commands)
"""

__version__ = "0.1.0"
