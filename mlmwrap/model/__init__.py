"""Stage 2, the model: a ModelSpec and data in, a verified (RE)ML optimum out.

``design`` resolves the spec against the data (listwise deletion, centering from
``centering``, the fixed and random design), ``engine`` minimizes lme4's profiled deviance from
per-cluster cross-products, ``deviance`` evaluates the unprofiled deviance and its gradient,
``numdiff`` holds the finite differences they share, ``empirical_bayes`` the per-cluster
random effects, ``new_design`` evaluates a fitted design on other rows, and
``statsmodels_bridge`` builds the statsmodels results at the optimum. Nothing here imports the
analyses, the reports or the results facade.
"""
