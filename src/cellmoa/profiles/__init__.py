"""Stage ``profiles`` (rules in ``workflow/rules/profiles.smk``): profiles and MoA matching.

Works on any profile table (``Metadata_*`` columns and numeric features): the networks'
embeddings or a CellProfiler table (``cellmoa evaluate-profiles``). No TensorFlow needed.

- :mod:`~cellmoa.profiles.postprocessing` post-processing against the controls (pycytominer)
- :mod:`~cellmoa.profiles.matching`       nearest-neighbour MoA matching (NSC, NSCB)
- :mod:`~cellmoa.profiles.retrieval`      mAP of MoA retrieval (copairs)
"""
