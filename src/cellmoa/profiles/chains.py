"""Chains of post-processing steps: parsed from the config, named, run.

A chain comes from a list of ``{"step": name, **settings}`` (``profiles.postprocess`` in the
config, or ``--postprocess`` of ``cellmoa evaluate-profiles``), or by name from :data:`CHAINS`
(:func:`chain_spec`); the steps are those of :mod:`cellmoa.profiles.postprocessing`.

>>> chain = parse_chain([{"step": "normalize", "method": "standardize"},
...                      {"step": "pca", "n_components": 2}, {"step": "spherize"}])
>>> [type(s).__name__ for s in chain]
['Normalize', 'PCA', 'Spherize']
"""

from __future__ import annotations

import logging
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from cellmoa.profiles.postprocessing import STEPS
from cellmoa.validation import TableError

log = logging.getLogger(__name__)


def parse_chain(items: list[dict] | None) -> list:
    """Step objects from ``[{"step": name, **settings}, ...]``.

    Unknown steps and settings are refused (``ValueError``).
    """
    chain = []
    for i, item in enumerate(items or []):
        item = dict(item)
        name = item.pop("step", None)
        if name not in STEPS:
            raise ValueError(
                f"postprocess step {i + 1}: unknown step {name!r}; use one of {', '.join(STEPS)}"
            )
        known = {f.name for f in fields(STEPS[name])}
        unknown = sorted(set(item) - known)
        if unknown:
            raise ValueError(
                f"postprocess step {i + 1} ({name}): unknown setting(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        chain.append(STEPS[name](**item))
    return chain


def postprocess(table: pd.DataFrame, features: list[str], chain: list, source: str = "profiles"):
    """Run ``chain`` on ``table``.

    Returns (table, features, notes) where ``notes`` is one row per step (step, what it did),
    also logged.
    """
    notes = []
    for step in chain:
        name = next(k for k, v in STEPS.items() if isinstance(step, v))
        table, features, note = step.apply(table, list(features))
        if not np.isfinite(table[features].to_numpy(np.float64)).all():
            raise TableError(f"{source}: step {name} produced NaN or infinite values ({note})")
        log.info("%s: %s: %s", source, name, note)
        notes.append({"step": name, "what": note})
    return table, list(features), pd.DataFrame(notes, columns=["step", "what"])


#: Named chains (``--postprocess NAME``, ``profiles.postprocess: NAME``), in the step-list form
#: :func:`parse_chain` reads. ``cellprofiler``: the field's chain for CellProfiler features,
#: chosen on the real BBBC021 well profiles (benchmarks/bench_profiles_real.py, docs/benchmarks.md);
#: ``embeddings`` (the workflow's default): DeepProfiler's typical-variation normalisation, the
#: features standardised on the controls, then a PCA keeping 99% of the controls' variance and
#: ZCA sphering, both fit on the controls; ``none``: raw profiles only. On BBBC021's CellProfiler
#: profiles ``cellprofiler`` scored NSC 97/103, NSCB 81/92, mAP 0.867/0.831 against the field's
#: standard chain's 95/103, 78/92, 0.832/0.795; ``embeddings`` 93/103, 72/92, 0.791/0.731 there
#: (without its first step, 43/103: PCA then follows the features' units), against 54/103, 37/92
#: for the workflow's former default, each batch's control mean subtracted.
CHAINS: dict[str, list[dict]] = {
    "cellprofiler": [
        {"step": "normalize", "method": "mad_robustize", "by": "screen", "samples": "controls"},
        {"step": "feature_select", "corr_threshold": 0.8},
        {"step": "spherize", "method": "ZCA-cor", "epsilon": 1.0},
        {"step": "rank_normal", "by": "screen"},
    ],
    "embeddings": [
        {"step": "normalize", "method": "standardize", "by": "screen", "samples": "controls"},
        {"step": "pca", "n_components": 0.99, "fit_on": "controls"},
        {"step": "spherize", "method": "ZCA", "epsilon": 1.0},
    ],
    "none": [],
}


def chain_spec(value, default: str = "cellprofiler") -> tuple[str, list[dict]]:
    """Resolve a post-processing choice to a label and a step list.

    Parameters
    ----------
    value : str, path-like, list of dict or None
        A chain name (a key of :data:`CHAINS`), the path of a YAML file (a list of steps or a
        mapping with the key ``postprocess``), a list of step dicts, or None for ``default``.
    default : str
        The chain name used when ``value`` is None.

    Returns
    -------
    tuple of (str, list of dict)
        A label to print (the chain name, the file path, or ``"custom"``) and a copy of the steps
        (validate them with :func:`parse_chain`).

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones) or a file that holds no step list.

    Examples
    --------
    >>> chain_spec("none", "cellprofiler")
    ('none', [])
    >>> chain_spec(None, "none")
    ('none', [])
    >>> chain_spec([{"step": "pca"}], "none")
    ('custom', [{'step': 'pca'}])
    """
    if value is None:
        value = default
    if isinstance(value, (list, tuple)):
        return "custom", [dict(item) for item in value]
    text = str(value)
    if text in CHAINS:
        return text, [dict(item) for item in CHAINS[text]]
    path = Path(text)
    if text.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise ValueError(f"postprocess: {text}: no such file")
        spec = yaml.safe_load(path.read_text())
        steps = spec.get("postprocess", spec) if isinstance(spec, dict) else spec
        if steps is None:
            steps = []
        if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
            raise ValueError(
                f"postprocess: {text}: expected a list of steps ({{step: name, ...}}) or a "
                "mapping with the key postprocess"
            )
        return text, [dict(item) for item in steps]
    raise ValueError(
        f"postprocess: unknown chain {text!r}; use one of {', '.join(CHAINS)} or a YAML file"
    )
