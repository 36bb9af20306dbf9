"""Stage ``evaluate`` (rules in ``workflow/rules/evaluate.smk``): the networks' predictions scored.

- :mod:`~cellmoa.evaluate.accuracy`    treatment-level aggregation and accuracy
- :mod:`~cellmoa.evaluate.conformal`   split-conformal prediction sets
- :mod:`~cellmoa.evaluate.calibration` calibration of the sets on leave-one-compound-out folds
- :mod:`~cellmoa.evaluate.unannotated` calibrated MoA calls for unannotated compounds
- :mod:`~cellmoa.evaluate.neighbours`  their nearest annotated treatments
- :mod:`~cellmoa.evaluate.profile_calls` the same calls for any profile table (nearest-neighbour
  model, ``cellmoa predict-profiles``)
- :mod:`~cellmoa.evaluate.novelty_check` every MoA hidden in turn: how well novelty is flagged
"""
