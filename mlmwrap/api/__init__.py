"""Stage 5, the public entry points: :func:`fit`, :func:`build_up` and the results facade.

:class:`~mlmwrap.api.results.MLMResults` computes every number of a fit once and delegates
its methods to :mod:`mlmwrap.analysis` and :mod:`mlmwrap.report`.
"""
