"""Stage 3, analyses of a fitted model: each module takes a results object.

Analyses do not import one another (checked by import-linter in the tests); what two of them
need lives in :mod:`mlmwrap.analysis.shared`. An analysis that needs another number of the fit
asks the results object for it (``res.effects()``, ``res.refit(...)``).
"""
