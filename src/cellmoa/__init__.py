"""cellmoa: mechanism-of-action prediction from high-content microscopy with pretrained CNNs.

The package holds the domain logic of the Snakemake workflow; the rule scripts in
``workflow/scripts`` only read the ``snakemake`` object and call these modules:

- :mod:`cellmoa.datasets`     dataset adapters (BBBC021) behind one interface
- :mod:`cellmoa.synthetic`    a synthetic dataset in BBBC021's exact layout
- :mod:`cellmoa.download`     fetching and safely extracting archives
- :mod:`cellmoa.illumination` illumination functions (estimate, smooth, apply)
- :mod:`cellmoa.tensors`      per-plate HDF5 tensors and their assembly
- :mod:`cellmoa.models`       ImageNet-pretrained networks from keras.applications
- :mod:`cellmoa.training`     per-fold training and prediction
- :mod:`cellmoa.evaluation`   treatment-level aggregation and accuracy
- :mod:`cellmoa.reporting`    tables printed and written for people
"""

__version__ = "0.1.0"
