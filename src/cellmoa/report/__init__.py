"""Stage ``report`` (rules in ``workflow/rules/report.smk``): tables and figures for people.

- :mod:`~cellmoa.report.tables` summary tables
- :mod:`~cellmoa.report.plots`  figures
"""
