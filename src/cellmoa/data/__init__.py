"""Stage ``data`` (rules in ``workflow/rules/data.smk``): getting a screen's files.

- :mod:`~cellmoa.data.datasets`  dataset adapters behind one interface, and their registry
- :mod:`~cellmoa.data.synthetic` synthetic datasets in each registered dataset's exact layout
- :mod:`~cellmoa.data.download`  fetching files and extracting archives safely, manifests
- :mod:`~cellmoa.data.wells`     well names of 96/384/1536-well plates
"""
