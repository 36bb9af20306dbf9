"""Stage ``features``: CellProfiler's measurements of the cells; the classical baseline.

The baseline's well profiles are scored beside the networks, as a network's outputs are.

- :mod:`~cellmoa.features.measure`   per-object measurements of one field with cp-measure
- :mod:`~cellmoa.features.jobs`      the per-plate job: every usable field measured, the cells of
  each well aggregated to its profile (median)
- :mod:`~cellmoa.features.baseline`  the well profiles as a network's outputs: crop-aligned
  profiles and leave-one-compound-out logistic-regression predictions (``CellProfiler``)

``docs/methods.md`` ("CellProfiler baseline") has the method; ``docs/outputs.md`` the files.
"""
