"""A model with more than two levels as written in equations (HLM3 notation), no data attached.

Raudenbush & Bryk (2002, ch. 8): the level-1 coefficients ``pK`` (π) have level-2 equations
``pK = bK0 + bK1*W1 + ... + rK``; each level-2 coefficient ``bKM`` (β) has a level-3 equation
``bKM = gKM0 + gKM1*Z1 + ... + uKM``. Substituting gives one fixed term per gamma,
``gKMS -> X_K:W_M:Z_S``, a level-2 random term ``rK -> X_K`` and a level-3 random term
``uKM -> X_K:W_M``. Every predictor remembers the level of the equation it is written in,
because centering depends on it (``cwc(x)`` in a level-2 equation centers within the
level-3 unit). Levels are a list, so a fourth level extends the lists rather than the fields.

Examples
--------
>>> from mlmwrap.language.levels import parse_model
>>> spec = parse_model('''
...     score = p0 + p1*cwc(gcsecnt) + e
...     p0 = b00 + b01*cmean(gcsecnt) + r0
...     p1 = b10 + r1
...     b00 = g000 + u00
...     b01 = g010
...     b10 = g100
... ''')
>>> print(spec.reduced_text())
score = g000 + g010*cmean(gcsecnt) + g100*cwc(gcsecnt) + r0 + r1*cwc(gcsecnt) + u00 + e
>>> nested_formulas(spec, ["school", "lea"]).lme4
'score ~ 1 + cmean_gcsecnt + cwc_gcsecnt + (1 + cwc_gcsecnt | lea:school) + (1 | lea)'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from mlmwrap.language.expr import NO_SPAN, Expr, Span, Var, product
from mlmwrap.language.formulas import TermWriter, derived_name, patsy_name, r_dummy, r_name
from mlmwrap.language.spec import covariance_blocks

__all__ = [
    "LEVEL_LETTERS",
    "NestedGamma",
    "NestedRandom",
    "NestedCoefficient",
    "NestedSpec",
    "NestedFormulas",
    "nested_formulas",
    "index_label",
]

#: Coefficient letters per level of the equation they are predicted in: the outcome's
#: coefficients are p (level 1), then b (level 2), then g (the gammas, top level).
LEVEL_LETTERS = ("p", "b", "g")
#: Random-effect letters per level, from level 2 up.
RANDOM_LETTERS = ("r", "u")


def index_label(letter: str, index: tuple[int, ...]) -> str:
    """``'g101'``; with a separator when a subscript has two digits (``'g1_10_0'``).

    >>> index_label("g", (1, 0, 1)), index_label("b", (12, 0))
    ('g101', 'b12_0')
    """
    if all(i < 10 for i in index):
        return letter + "".join(map(str, index))
    return letter + "_".join(map(str, index))


@dataclass(frozen=True)
class NestedCoefficient:
    """One coefficient of a non-top equation (``p1`` at level 1, ``b10`` at level 2).

    Attributes
    ----------
    label, index
        ``'b10'`` and ``(1, 0)``.
    level
        The level of the equation it is written in (1 for ``pK``, 2 for ``bKM``).
    predictor
        Its predictor in that equation (``None`` for a constant).
    random
        The label of the random effect of its own equation (``'r1'``, ``'u10'``) or ``None``.
    zero_mean
        Its equation has no constant term and no gamma (``p1 = r1``).
    """

    label: str
    index: tuple[int, ...]
    level: int
    predictor: Expr | None
    random: str | None
    zero_mean: bool = False
    span: Span = field(default=NO_SPAN, compare=False, repr=False)
    lineno: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True)
class NestedGamma:
    """A fixed coefficient ``gKMS``: the product of one predictor per level.

    ``predictors[i]`` is the predictor written at level ``i + 1`` (``None`` for a constant).
    """

    label: str
    index: tuple[int, ...]
    predictors: tuple[Expr | None, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)

    @property
    def expr(self) -> Expr | None:
        """The product of the predictors (``None`` for the overall intercept)."""
        return product([e for e in self.predictors if e is not None])


@dataclass(frozen=True)
class NestedRandom:
    """A random effect (``r1`` at level 2, ``u10`` at level 3) and its design predictors."""

    label: str
    level: int
    predictors: tuple[Expr | None, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)

    @property
    def expr(self) -> Expr | None:
        return product([e for e in self.predictors if e is not None])


def _times(coef: str, e: Expr | None) -> str:
    return coef if e is None else f"{coef}*{e.text()}"


@dataclass(frozen=True)
class NestedSpec:
    """A model of ``n_levels`` nested levels as written.

    Attributes
    ----------
    outcome, residual
        As in :class:`~mlmwrap.language.spec.ModelSpec`.
    coefficients
        Per level from 1 up to the level below the top: the coefficients written there
        (``p0, p1`` then ``b00, b01, b10``), in the order written.
    gammas
        The top-level gammas, in the order of their equations.
    random
        Per level from 2 up: the random effects (``r0, r1`` then ``u00``).
    zero_covariances
        Per level from 2 up: the covariances fixed at 0 (pairs of labels).
    """

    outcome: Expr
    residual: str | None
    coefficients: tuple[tuple[NestedCoefficient, ...], ...]
    gammas: tuple[NestedGamma, ...]
    random: tuple[tuple[NestedRandom, ...], ...]
    zero_covariances: tuple[tuple[tuple[str, str], ...], ...]
    source: str = field(default="", compare=False, repr=False)
    lines: dict[int, str] = field(default_factory=dict, compare=False, repr=False, hash=False)

    @property
    def n_levels(self) -> int:
        return len(self.coefficients) + 1

    @property
    def random_labels(self) -> tuple[tuple[str, ...], ...]:
        return tuple(tuple(r.label for r in level) for level in self.random)

    def tau_blocks(self, level: int) -> tuple[tuple[str, ...], ...]:
        """The blocks of the tau of ``level`` (2 or 3) as the ``cov`` lines leave them."""
        labels = list(self.random_labels[level - 2])
        return covariance_blocks(labels, self.zero_covariances[level - 2])

    def equation_lines(self, level: int) -> list[str]:
        """The equations written at ``level`` (1: the level-1 equation)."""
        if level == 1:
            terms = [_times(c.label, c.predictor) for c in self.coefficients[0]]
            return [f"{self.outcome.text()} = {' + '.join([*terms, self.residual or 'e'])}"]
        out = []
        below = self.coefficients[level - 2]
        top = level == self.n_levels
        for coef in below:
            if top:
                terms = [
                    _times(g.label, g.predictors[level - 1])
                    for g in self.gammas
                    if g.index[: level - 1] == coef.index
                ]
            else:
                terms = [
                    _times(c.label, c.predictor)
                    for c in self.coefficients[level - 1]
                    if c.index[: level - 1] == coef.index
                ]
            if coef.random:
                terms.append(coef.random)
            out.append(f"{coef.label} = {' + '.join(terms) or '0'}")
        out += [f"cov({a}, {b}) = 0" for a, b in self.zero_covariances[level - 2]]
        return out

    def reduced_text(self) -> str:
        """The reduced (mixed) form: every level substituted into level 1."""
        terms = [_times(g.label, g.expr) for g in self.gammas]
        terms += [_times(r.label, r.expr) for level in self.random for r in level]
        terms.append(self.residual or "e")
        return f"{self.outcome.text()} = {' + '.join(terms)}"

    def __str__(self) -> str:
        parts = []
        for level in range(1, self.n_levels + 1):
            body = "\n".join("  " + line for line in self.equation_lines(level))
            parts.append(f"Level {level}:\n{body}")
        parts.append(f"Reduced form:\n  {self.reduced_text()}")
        return "\n".join(parts)


@dataclass(frozen=True)
class NestedFormulas:
    """The reduced form of a nested model as formulas.

    Attributes
    ----------
    fixed
        patsy formula of the fixed part.
    random
        Per level from 2 up: the patsy right side of the random part (``'1 + cwc_x'``).
    groups
        The cluster columns, level 2 first.
    lme4
        The lme4 formula (``(... | lea:school) + (... | lea)``).
    derived, derived_exprs, derived_levels
        Derived column -> expression text / expression / level of the equation it is in.
    term_of_gamma, term_of_random
        Label -> patsy term.
    """

    fixed: str
    random: tuple[str, ...]
    groups: tuple[str, ...]
    lme4: str
    derived: dict[str, str]
    derived_exprs: dict[str, Expr]
    derived_levels: dict[str, int]
    term_of_gamma: dict[str, str]
    term_of_random: dict[str, str]

    @property
    def fixed_rhs(self) -> str:
        return self.fixed.split("~", 1)[1].strip()

    @property
    def outcome(self) -> str:
        return self.fixed.split("~", 1)[0].strip()

    def __str__(self) -> str:
        lines = [f"fixed:   {self.fixed}"]
        for level, (rhs, g) in enumerate(zip(self.random, self.groups, strict=True), start=2):
            lines.append(f"level {level}: ~{rhs} | {g}")
        lines.append(f"lme4:    {self.lme4}")
        return "\n".join(lines)


class _LevelWriter(TermWriter):
    """A :class:`TermWriter` whose derived columns are keyed by the level they are written at:
    ``cwc(x)`` in a level-1 and in a level-2 equation are different columns."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.level = 1
        self.derived_levels: dict[str, int] = {}
        self._by_level: dict[tuple[int, str], str] = {}

    def column(self, expr: Expr) -> str:
        if isinstance(expr, Var):
            return self.rename(expr.name)
        key = (self.level, expr.text())
        if key not in self._by_level:
            name = derived_name(expr, self.rename)
            taken = set(self.derived) | self.reserved
            if name in taken and self.level > 1:
                name += f"_l{self.level}"
            while name in taken:
                name += "_"
            self._by_level[key] = name
            self.derived[name] = expr.text()
            self.derived_exprs[name] = expr
            self.derived_levels[name] = self.level
        return self._by_level[key]

    def at_levels(self, parts: tuple[Expr | None, ...]) -> tuple[str, str]:
        """patsy and R interaction of one predictor per level (level 1 first)."""
        pairs = []
        for level, part in enumerate(parts, start=1):
            if part is not None:
                self.level = level
                pairs += self.factors(part)
        if not pairs:
            return "1", "1"
        return ":".join(p for p, _ in pairs), ":".join(r for _, r in pairs)


def _intercept_first(terms: list[str]) -> list[str]:
    if "1" in terms:
        return [terms.pop(terms.index("1")), *terms]
    return ["0", *terms]


def nested_formulas(
    spec: NestedSpec,
    clusters: list[str] | tuple[str, ...],
    columns: Mapping[str, str] | None = None,
    categorical: Callable[[str], bool] | None = None,
) -> NestedFormulas:
    """The reduced form of a nested model as patsy and lme4 formulas.

    ``clusters`` lists the unit columns from level 2 up; ``columns`` maps names as written
    to data columns and ``categorical`` says which data columns are categorical.
    """
    columns = dict(columns or {})
    is_cat = categorical or (lambda name: False)
    exprs = [spec.outcome] + [e for g in spec.gammas for e in g.predictors if e is not None]
    used = {columns.get(v.name, v.name) for e in exprs for v in e.variables()}
    writer = _LevelWriter(
        rename=lambda name: columns.get(name, name),
        categorical=lambda e: isinstance(e, Var) and is_cat(columns.get(e.name, e.name)),
        reserved=used | set(clusters),
    )
    outcome_patsy, outcome_r = writer.at_levels((spec.outcome,))
    fixed_p: list[str] = []
    fixed_r: list[str] = []
    term_of_gamma: dict[str, str] = {}
    for g in spec.gammas:
        tp, tr = writer.at_levels(g.predictors)
        term_of_gamma[g.label] = tp
        if tp not in fixed_p:
            fixed_p.append(tp)
            fixed_r.append(tr)
    order = _intercept_first(list(fixed_p))
    fixed_r = [fixed_r[fixed_p.index(t)] if t in fixed_p else t for t in order]
    term_of_random: dict[str, str] = {}
    r_of: dict[str, str] = {}
    random_rhs = []
    for level in spec.random:
        terms = []
        for r in level:
            tp, tr = writer.at_levels(r.predictors)
            term_of_random[r.label] = tp
            r_of[r.label] = tr
            terms.append(tp)
        random_rhs.append(" + ".join(_intercept_first(terms)) if terms else "")
    # lme4 grouping factors: level 2 within level 3 is 'lea:school'
    r_names = [r_name(c) for c in clusters]
    bars = []
    for level in range(2, spec.n_levels + 1):
        group = ":".join(reversed(r_names[level - 2 :]))
        for block in spec.tau_blocks(level):
            terms = _intercept_first([r_of[u] for u in block])
            if terms[0] == "0":  # R would code a factor's every category: keep all but one
                terms = ["0", *(r_dummy(t) for t in terms[1:])]
            bars.append(f"({' + '.join(terms)} | {group})")
    return NestedFormulas(
        fixed=f"{outcome_patsy} ~ {' + '.join(order)}",
        random=tuple(random_rhs),
        groups=tuple(clusters),
        lme4=f"{outcome_r} ~ {' + '.join(fixed_r)} + {' + '.join(bars)}",
        derived=dict(writer.derived),
        derived_exprs=dict(writer.derived_exprs),
        derived_levels=dict(writer.derived_levels),
        term_of_gamma=term_of_gamma,
        term_of_random=term_of_random,
    )


# patsy names of plain columns, for the design
patsy_name = patsy_name
