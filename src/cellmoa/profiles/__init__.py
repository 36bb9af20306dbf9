"""Stage ``profiles`` (rules in ``workflow/rules/profiles.smk``): profiles and MoA matching.

Works on any profile table (``Metadata_*`` columns and numeric features): the networks'
embeddings or a CellProfiler table (``cellmoa evaluate-profiles``). No TensorFlow needed.

- :mod:`~cellmoa.profiles.tables`         treatment profiles, from any profile table or embeddings
- :mod:`~cellmoa.profiles.postprocessing` post-processing against the controls (pycytominer)
- :mod:`~cellmoa.profiles.nearest`        nearest-neighbour MoA matching (NSC, NSCB), per fold
- :mod:`~cellmoa.profiles.ensemble`       matching of the networks' ensemble
- :mod:`~cellmoa.profiles.retrieval`      mAP of MoA retrieval (copairs)
- :mod:`~cellmoa.profiles.summary`        accuracy with intervals, mAP and lift per scheme
- :mod:`~cellmoa.profiles.export`         the all-compound model's well and treatment profiles, in
  pycytominer's layout
"""
