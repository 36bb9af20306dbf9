"""cellmoa: mechanism-of-action prediction from high-content microscopy with pretrained CNNs.

The package holds the domain logic of the Snakemake workflow; the rule scripts in
``workflow/scripts`` only read the ``snakemake`` object and call these modules (the README's
"Where things live" table says which concern lives where):

- :mod:`cellmoa.data.datasets`      dataset adapters behind one interface, and their registry
- :mod:`cellmoa.data.synthetic`     synthetic datasets in each registered dataset's exact layout
- :mod:`cellmoa.data.download`      fetching files and extracting archives safely, manifests
- :mod:`cellmoa.preprocess.images`        reading a field's images, the reader thread, bad-image records
- :mod:`cellmoa.preprocess.illumination`  illumination functions (estimate, smooth, apply) and their files
- :mod:`cellmoa.preprocess.normalization` how a raw pixel becomes a stored value and a network pixel
- :mod:`cellmoa.preprocess.crops`         resizing fields, the crop grid, the empty-crop filter
- :mod:`cellmoa.preprocess.tensors`       the HDF5 layout: plate writer, crop metadata, assembly
- :mod:`cellmoa.preprocess.jobs` the illumination and tensors jobs of one plate
- :mod:`cellmoa.train.folds`         fold schemes, fold names, which crops a fold trains on
- :mod:`cellmoa.train.models`        ImageNet-pretrained networks from keras.applications, weights
- :mod:`cellmoa.train.inputs`        augmentation and the input pipeline
- :mod:`cellmoa.train.checkpoints`   kill-safe per-epoch checkpoints
- :mod:`cellmoa.train.training`      training settings, one fold's training, prediction, embeddings
- :mod:`cellmoa.train.gpus`          one GPU per job on multi-GPU machines
- :mod:`cellmoa.evaluate.accuracy`    treatment-level aggregation and accuracy
- :mod:`cellmoa.validation`    what every table must satisfy before it is scored
- :mod:`cellmoa.profiles.matching`      nearest-neighbour MoA matching of profiles (NSC, NSCB)
- :mod:`cellmoa.profiles.retrieval`     mAP of MoA retrieval (copairs)
- :mod:`cellmoa.profiles.postprocessing` profile post-processing against the controls (pycytominer)
- :mod:`cellmoa.intervals`     confidence intervals of accuracies
- :mod:`cellmoa.report.tables`     summary tables for people
- :mod:`cellmoa.report.plots`         figures
- :mod:`cellmoa.files`         atomic writes, TSV tables
- :mod:`cellmoa.logs`          per-job logging
- :mod:`cellmoa.cli`           the ``cellmoa`` command
"""

__version__ = "0.1.0"
