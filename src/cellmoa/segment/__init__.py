"""Stage ``segment``: nuclei and cells of each field (rule ``segment``, one job per plate).

- :mod:`~cellmoa.segment.settings`  the parameters, in units of the expected nucleus diameter
- :mod:`~cellmoa.segment.nuclei`    nuclei from the DNA stain (smoothing, log-Otsu threshold,
  per-object edges, watershed declumping)
- :mod:`~cellmoa.segment.cells`     cells grown from their nuclei over a cytoplasm stain
- :mod:`~cellmoa.segment.qc`        per-object tables, per-field QC (fields with no or absurd
  segmentation are named)
- :mod:`~cellmoa.segment.fields`    one field segmented: labels, objects, QC
- :mod:`~cellmoa.segment.store`     the HDF5 layout of a plate's labels
- :mod:`~cellmoa.segment.jobs`      the per-plate job: every stored field corrected and segmented
- :mod:`~cellmoa.segment.matching`  object-level F1 against a ground truth (IoU matching)

``docs/methods.md`` ("Segmentation") has the method and its measured accuracy.
"""
