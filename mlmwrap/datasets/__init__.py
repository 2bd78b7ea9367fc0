"""Data sets bundled with mlmwrap."""

from __future__ import annotations

from importlib import resources

import pandas as pd

__all__ = ["load_hsb"]


def load_hsb() -> pd.DataFrame:
    """The High School and Beyond extract of Raudenbush & Bryk (2002).

    7,185 students in 160 schools: ``mathach`` (mathematics achievement), ``ses``
    (socio-economic status), ``minority`` and ``female`` (0/1) per student; ``school``
    (id), ``meanses`` (school mean SES, as published), ``size``, ``sector``
    (1 = Catholic, 0 = public), ``pracad`` (proportion in the academic track),
    ``disclim`` (disciplinary climate) and ``himinty`` (1 = more than 40% minority) per
    school.

    Provenance: the 1982 High School and Beyond survey, as analysed in Raudenbush, S. W. &
    Bryk, A. S. (2002), *Hierarchical Linear Models* (2nd ed.), Sage, chapter 4. This copy
    joins R's ``nlme::MathAchieve`` (students) and ``nlme::MathAchSchool`` (schools) on
    the school id. Each call returns a fresh DataFrame.

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> hsb = load_hsb()
    >>> hsb.shape, hsb["school"].nunique()
    ((7185, 11), 160)
    """
    with resources.files(__package__).joinpath("hsb.csv").open("r") as handle:
        return pd.read_csv(handle)
