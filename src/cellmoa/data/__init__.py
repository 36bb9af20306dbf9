"""Stage ``data`` (rules in ``workflow/rules/data.smk``): getting a screen's files.

- :mod:`~cellmoa.data.datasets`  dataset adapters behind one interface, and their registry
- :mod:`~cellmoa.data.synthetic` synthetic datasets in each registered dataset's exact layout
- :mod:`~cellmoa.data.http`      fetching one file safely (resumed, retried, bounded, checked)
- :mod:`~cellmoa.data.archives`  checking and extracting zip archives safely
- :mod:`~cellmoa.data.manifests` manifests of what was downloaded, to detect later changes
- :mod:`~cellmoa.data.fetch`     a screen's images fetched one by one into a plate folder
- :mod:`~cellmoa.data.wells`     well names of 96/384/1536-well plates
"""
