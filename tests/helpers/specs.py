"""Small synthetic dataset specifications for fast tests."""

from __future__ import annotations

from cellmoa.data.synthetic.bbbc021 import SyntheticSpec


def tiny_spec(**overrides) -> SyntheticSpec:
    values = dict(
        seed=3,
        moas={
            "Microtubule destabilizers": ["nocodazole", "vincristine"],
            "Actin disruptors": ["cytochalasin B", "latrunculin B"],
        },
        concentrations=[0.3, 3.0],
        unlabelled_compounds=["AZ-U1"],
        weeks=2,
        plates_per_week=2,
        dmso_wells_per_plate=2,
        sites_per_well=1,
        image_height=96,
        image_width=128,
        nucleus_radius=3.0,
        cells_per_field=30,
    )
    values.update(overrides)
    return SyntheticSpec(**values)
