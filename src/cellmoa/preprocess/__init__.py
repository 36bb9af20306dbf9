"""Stage ``preprocess`` (rules in ``workflow/rules/preprocess.smk``): raw fields to HDF5 tensors.

- :mod:`~cellmoa.preprocess.images`        reading a field's images, bad-image records
- :mod:`~cellmoa.preprocess.illumination`  illumination functions (estimate, smooth, apply)
- :mod:`~cellmoa.preprocess.normalization` how a raw pixel becomes a stored value and a network
  pixel
- :mod:`~cellmoa.preprocess.crops`         resizing fields, the crop grid, the empty-crop filter
- :mod:`~cellmoa.preprocess.tensors`       the HDF5 layout: plate writer, crop metadata, assembly
- :mod:`~cellmoa.preprocess.settings`      what the tensors job makes of a plate (the config)
- :mod:`~cellmoa.preprocess.plates`        which fields of a plate are stored
- :mod:`~cellmoa.preprocess.jobs`          the illumination and tensors jobs of one plate
"""
