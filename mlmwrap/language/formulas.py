"""The reduced form as formulas: patsy's (for statsmodels' ``MixedLM``) and lme4's.

Substituting the level-2 equations into level 1 gives one fixed term per gamma
(``gKM -> X_K:W_M``) and one random term per ``uK`` (``X_K``). This module writes those terms
as formula text. A predictor that needs the estimation sample or a cluster to be computed
(``cwc(ses)``, ``cmean(ses)``, ``cgm(ses)``, ``center(ses, 1)``) or that is a transform or a
power (``log(x)``, ``x^2``) becomes a *derived column* with a name of its own (``cwc_ses``,
``log_x``, ``x_pow2``); the model stage computes it into ``res.model_frame``. Bare variables
stay as they are, categorical predictors are written ``C(x)`` (coded by patsy with the first
category as reference), and products are patsy interactions (``x:z``).

Pure text: nothing here sees data, so :meth:`ModelSpec.formulas` uses the names as written
and the fit (:attr:`MLMResults.formulas`) the data columns they resolved to.

Examples
--------
>>> from mlmwrap.language.equations import parse_equations
>>> spec = parse_equations('''
...     mathach = b0 + b1*cwc(ses) + e
...     b0 = g00 + g01*meanses + g02*C(sector) + u0
...     b1 = g10 + g11*meanses + u1
... ''')
>>> f = reduced_formulas(spec, cluster="school")
>>> f.fixed
'mathach ~ 1 + meanses + C(sector) + cwc_ses + cwc_ses:meanses'
>>> f.re_formula, f.groups
('~1 + cwc_ses', 'school')
>>> f.lme4
'mathach ~ 1 + meanses + factor(sector) + cwc_ses + cwc_ses:meanses + (1 + cwc_ses | school)'
>>> f.derived
{'cwc_ses': 'cwc(ses)'}
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from mlmwrap.language.expr import Call, Expr, Num, Power, Product, Var
from mlmwrap.language.spec import ModelSpec

__all__ = ["Formulas", "reduced_formulas", "derived_name"]

_NOT_NAME = re.compile(r"[^0-9A-Za-z_]+")


@dataclass(frozen=True)
class Formulas:
    """The reduced form of a model as formulas.

    Attributes
    ----------
    fixed : str
        patsy formula of the fixed part, ``outcome ~ 1 + terms`` (``formula`` of
        ``statsmodels.formula.api.mixedlm``).
    re_formula : str
        patsy formula of the random part, ``~1 + X_K`` (``re_formula``).
    groups : str or None
        The cluster column (``groups``); None when the spec is not tied to data yet.
    lme4 : str
        The same model as an lme4 formula (``lmer(...)``), over the same columns; one
        ``(... | g)`` term per block of a block-diagonal tau (``cov(u0, u1) = 0``).
    derived : dict
        Derived column name -> the expression it holds (``{'cwc_ses': 'cwc(ses)'}``), in
        the order they first appear; the model stage computes them into the model frame.
    term_of_gamma : dict
        Gamma label -> its patsy term (``'g11' -> 'cwc_ses:meanses'``; ``'1'`` for the
        intercept).
    term_of_random : dict
        Random-effect label -> its patsy term (``'u1' -> 'cwc_ses'``).
    """

    fixed: str
    re_formula: str
    groups: str | None
    lme4: str
    derived: dict[str, str] = field(default_factory=dict)
    term_of_gamma: dict[str, str] = field(default_factory=dict)
    term_of_random: dict[str, str] = field(default_factory=dict)
    derived_exprs: dict[str, Expr] = field(default_factory=dict, repr=False, compare=False)

    @property
    def fixed_rhs(self) -> str:
        """The right-hand side of :attr:`fixed` (what ``patsy.dmatrix`` takes)."""
        return self.fixed.split("~", 1)[1].strip()

    @property
    def re_rhs(self) -> str:
        """The right-hand side of :attr:`re_formula`."""
        return self.re_formula.lstrip("~").strip()

    @property
    def outcome(self) -> str:
        """The left-hand side of :attr:`fixed`: the outcome's column."""
        return self.fixed.split("~", 1)[0].strip()

    def __str__(self) -> str:
        groups = self.groups or "<cluster>"
        return (
            f"statsmodels: mixedlm({self.fixed!r}, re_formula={self.re_formula!r}, "
            f"groups={groups!r})\nlme4:        lmer({self.lme4})"
        )


def _number_text(value: float) -> str:
    text = f"{value:g}".replace("-", "m").replace(".", "p").replace("+", "")
    return text


def derived_name(expr: Expr, rename: Callable[[str], str] = str) -> str:
    """A column name for a derived predictor: ``cwc(ses)`` -> ``cwc_ses``.

    >>> from mlmwrap.language.expr import Call, Num, Var, Power
    >>> derived_name(Call("center", (Var("ses"), Num(-0.5))))
    'center_ses_m0p5'
    >>> derived_name(Power(Var("x"), Num(2)))
    'x_pow2'
    """
    if isinstance(expr, Var):
        return _NOT_NAME.sub("_", rename(expr.name)).strip("_") or "x"
    if isinstance(expr, Num):
        return _number_text(float(expr.value))
    if isinstance(expr, Call):
        return "_".join([expr.func, *(derived_name(a, rename) for a in expr.args)])
    if isinstance(expr, Power):
        return f"{derived_name(expr.base, rename)}_pow{_number_text(float(expr.exponent.value))}"
    if isinstance(expr, Product):
        return "_x_".join(derived_name(f, rename) for f in expr.factors)
    return _NOT_NAME.sub("_", expr.text()).strip("_")  # pragma: no cover


def _is_identifier(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


class TermWriter:
    """Writes expressions as patsy and R factors, collecting the derived columns."""

    def __init__(
        self,
        rename: Callable[[str], str],
        categorical: Callable[[Expr], bool],
        reserved: set[str],
    ):
        self.rename = rename
        self.reserved = reserved  # the model's own columns: no derived column takes a name
        self.is_categorical = categorical
        self.derived: dict[str, str] = {}
        self.derived_exprs: dict[str, Expr] = {}
        self._names: dict[str, str] = {}  # expression text -> derived name

    def column(self, expr: Expr) -> str:
        """The column that holds ``expr``: its own name, or a new derived one."""
        if isinstance(expr, Var):
            return self.rename(expr.name)
        text = expr.text()
        if text not in self._names:
            name = derived_name(expr, self.rename)
            taken = set(self.derived) | self.reserved
            while name in taken:
                name += "_"
            self._names[text] = name
            self.derived[name] = text
            self.derived_exprs[name] = expr
        return self._names[text]

    def factors(self, expr: Expr) -> list[tuple[str, str]]:
        """(patsy, R) text of each factor of ``expr``."""
        if isinstance(expr, Product):
            return [pair for f in expr.factors for pair in self.factors(f)]
        if isinstance(expr, Call) and expr.func == "C" or self.is_categorical(expr):
            inner = expr.args[0] if isinstance(expr, Call) else expr
            name = self.rename(inner.name)
            return [(f"C({patsy_name(name)})", f"factor({r_name(name)})")]
        name = self.column(expr)
        return [(patsy_name(name), r_name(name))]

    def term(self, *parts: Expr | None) -> tuple[str, str]:
        """The patsy and R interaction of ``parts`` (``'1'`` when there is none)."""
        pairs = [pair for p in parts if p is not None for pair in self.factors(p)]
        if not pairs:
            return "1", "1"
        return ":".join(p for p, _ in pairs), ":".join(r for _, r in pairs)


def r_dummy(term: str) -> str:
    """``factor(x)`` alone -> ``dummy(x)``: in a formula without an intercept R would code
    every category of the factor, ``lme4::dummy`` all but the first (treatment coding)."""
    if term.startswith("factor(") and term.endswith(")") and ":" not in term:
        return "dummy(" + term[len("factor(") :]
    return term


def patsy_name(name: str) -> str:
    return name if _is_identifier(name) else f"Q({name!r})"


_R_RESERVED = set(
    "if else repeat while function for next break TRUE FALSE NULL Inf NaN NA in".split()
)


def r_name(name: str) -> str:
    plain = re.fullmatch(r"[A-Za-z.][A-Za-z0-9._]*", name) and name not in _R_RESERVED
    return name if plain else f"`{name}`"


def reduced_formulas(
    spec: ModelSpec,
    cluster: str | None = None,
    columns: Mapping[str, str] | None = None,
    categorical: Callable[[str], bool] | None = None,
) -> Formulas:
    """The reduced form of ``spec`` as patsy and lme4 formulas.

    Parameters
    ----------
    spec
        The parsed equations.
    cluster
        The cluster column (``groups``), if known.
    columns
        Name as written -> data column (the design's name resolution, which drops ``_ij``
        subscripts); names not in it are used as written.
    categorical
        Whether a data column is categorical (a non-numeric column used without ``C()``);
        by default only ``C(x)`` is.

    Returns
    -------
    Formulas
    """
    columns = dict(columns or {})
    is_cat = categorical or (lambda name: False)
    expressions = [spec.outcome] + [
        e for b in spec.betas for e in (b.predictor, *(g.predictor for g in b.gammas)) if e
    ]
    used = {columns.get(v.name, v.name) for e in expressions for v in e.variables()}
    writer = TermWriter(
        rename=lambda name: columns.get(name, name),
        categorical=lambda e: isinstance(e, Var) and is_cat(columns.get(e.name, e.name)),
        reserved=used | ({cluster} if cluster else set()),
    )
    outcome_patsy, outcome_r = writer.term(spec.outcome)

    fixed_patsy: list[str] = []
    fixed_r: list[str] = []
    term_of_gamma: dict[str, str] = {}
    for beta in spec.betas:
        for gamma in beta.gammas:
            patsy_term, r_term = writer.term(beta.predictor, gamma.predictor)
            term_of_gamma[gamma.label] = patsy_term
            if patsy_term not in fixed_patsy:
                fixed_patsy.append(patsy_term)
                fixed_r.append(r_term)
    if "1" not in fixed_patsy:  # no overall intercept: say so, as both languages need
        fixed_patsy.insert(0, "0")
        fixed_r = [r_dummy(t) for t in fixed_r]
        fixed_r.insert(0, "0")
    else:
        k = fixed_patsy.index("1")
        fixed_patsy.insert(0, fixed_patsy.pop(k))
        fixed_r.insert(0, fixed_r.pop(k))

    random_patsy: list[str] = []
    random_r: list[str] = []
    term_of_random: dict[str, str] = {}
    for beta in spec.random_betas:
        patsy_term, r_term = writer.term(beta.predictor)
        term_of_random[str(beta.u_label)] = patsy_term
        random_patsy.append(patsy_term)
        random_r.append(r_term)
    if "1" not in random_patsy:
        random_patsy.insert(0, "0")
        random_r.insert(0, "0")

    groups_r = r_name(cluster) if cluster is not None else "cluster"
    # one (... | g) term per block of tau (cov(uK, uM) = 0 lines), as lme4 writes them
    r_of = {
        str(b.u_label): term
        for b, term in zip(spec.random_betas, random_r[-len(spec.random_betas) :], strict=True)
    }
    bars = []
    for block in spec.tau_blocks:
        terms = [r_of[u] for u in block]
        if "1" not in terms:
            # without an intercept R codes a factor's every category; lme4's dummy(x) keeps
            # the indicators of all but the first, the treatment coding mlmwrap uses
            terms = [r_dummy(t) for t in terms]
            terms.insert(0, "0")
        else:
            terms.insert(0, terms.pop(terms.index("1")))
        bars.append(f"({' + '.join(terms)} | {groups_r})")
    lme4 = f"{outcome_r} ~ {' + '.join(fixed_r)} + {' + '.join(bars)}"
    return Formulas(
        fixed=f"{outcome_patsy} ~ {' + '.join(fixed_patsy)}",
        re_formula=f"~{' + '.join(random_patsy)}",
        groups=cluster,
        lme4=lme4,
        derived=dict(writer.derived),
        derived_exprs=dict(writer.derived_exprs),
        term_of_gamma=term_of_gamma,
        term_of_random=term_of_random,
    )
