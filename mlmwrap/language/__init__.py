"""Stage 1, the equation language: text -> tokens -> syntax tree -> ModelSpec -> reduced form.

Pure Python: nothing here imports numpy, pandas or statsmodels, and nothing here sees data.
``syntax`` tokenizes and parses, ``equations`` checks the equations and builds the
:class:`~mlmwrap.language.spec.ModelSpec` (``spec``), whose terms are expressions
(``expr``).
"""
