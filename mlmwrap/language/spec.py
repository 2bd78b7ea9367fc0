"""The model specification: what the equations say, with no data attached.

A :class:`ModelSpec` holds the outcome, the level-1 coefficients (:class:`Beta`), their
level-2 equations (:class:`Gamma` terms and an optional random effect ``uK``) and the
reduced (mixed) form obtained by substituting level 2 into level 1. It is built by
:func:`mlmwrap.language.equations.parse_equations`.

Examples
--------
>>> from mlmwrap.language.equations import parse_equations
>>> spec = parse_equations('''
...     mathach = b0 + b1*cwc(ses) + e
...     b0 = g00 + g01*meanses + u0
...     b1 = g10 + g11*meanses
... ''')
>>> print(spec.reduced_text())
mathach = g00 + g01*meanses + g10*cwc(ses) + g11*cwc(ses)*meanses + u0 + e
>>> [t.text() for t in spec.fixed_terms]
['1', 'meanses', 'cwc(ses)', 'cwc(ses)*meanses']
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlmwrap.language.expr import NO_SPAN, Expr, Span, product

__all__ = ["Gamma", "Beta", "FixedTerm", "ModelSpec", "covariance_blocks"]


@dataclass(frozen=True)
class Gamma:
    """One fixed coefficient ``gKM`` of a level-2 equation.

    Attributes
    ----------
    label
        Normalised label: ``'g12'`` (from ``g12``, ``γ12``, ``gamma12``, ``g_12``, ``G12``);
        ``'g10_2'`` when K or M has more than one digit.
    beta
        K, the index of the beta whose equation holds this gamma.
    position
        M as written in the label: 0 for the constant ``gK0``, else the predictor's number.
    predictor
        W_M, the level-2 predictor expression; ``None`` for the constant.
    span
        Where the label is written.
    """

    label: str
    beta: int
    position: int
    predictor: Expr | None
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class Beta:
    """One level-1 coefficient ``bK`` and its level-2 equation.

    Attributes
    ----------
    index
        K.
    label
        Normalised ``'bK'``.
    predictor
        X_K, the level-1 predictor; ``None`` for the intercept ``b0``.
    gammas
        The gamma terms of its level-2 equation, in the order written.
    random
        Whether the equation has a random effect ``uK``.
    u_label
        Normalised ``'uK'`` when random, else ``None``.
    span
        Where the beta is written in the level-1 equation.
    level2_lineno
        Line of its level-2 equation.
    u_span
        Where ``uK`` is written (``None`` when fixed).
    """

    index: int
    label: str
    predictor: Expr | None
    gammas: tuple[Gamma, ...]
    random: bool
    u_label: str | None
    span: Span = field(default=NO_SPAN, compare=False, repr=False)
    level2_lineno: int = field(default=0, compare=False, repr=False)
    u_span: Span | None = field(default=None, compare=False, repr=False)

    def level2_text(self) -> str:
        """The level-2 equation, e.g. ``'b1 = g10 + g11*meanses + u1'``."""
        terms = [_times(g.label, g.predictor) for g in self.gammas]
        if self.random:
            terms.append(str(self.u_label))
        return f"{self.label} = {' + '.join(terms)}"


@dataclass(frozen=True)
class FixedTerm:
    """A term of the reduced form's fixed part: ``gKM * X_K * W_M``.

    Attributes
    ----------
    gamma
        The coefficient.
    level1
        X_K (``None`` for K = 0).
    level2
        W_M (``None`` for the constant M = 0).
    """

    gamma: Gamma
    level1: Expr | None
    level2: Expr | None

    @property
    def label(self) -> str:
        """The gamma label."""
        return self.gamma.label

    @property
    def expr(self) -> Expr | None:
        """X_K * W_M as one expression (``None`` for the overall intercept ``g00``)."""
        parts = [e for e in (self.level1, self.level2) if e is not None]
        return product(parts)

    def text(self) -> str:
        """``'cwc(ses)*meanses'``, or ``'1'`` for the intercept."""
        e = self.expr
        return "1" if e is None else e.text()


def covariance_blocks(
    labels: list[str], zero: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, ...], ...]:
    """Group ``labels`` into blocks: connected by a covariance that is not fixed at 0.

    Pairs naming a label not in ``labels`` are ignored. Whether each block is complete (its
    every covariance free, so that tau is block-diagonal) is checked by the parser.

    Examples
    --------
    >>> covariance_blocks(["u0", "u1", "u2"], (("u0", "u1"), ("u0", "u2"), ("u1", "u2")))
    (('u0',), ('u1',), ('u2',))
    >>> covariance_blocks(["u0", "u1", "u2"], (("u0", "u2"),))
    (('u0', 'u1', 'u2'),)
    """
    zero_set = {frozenset(p) for p in zero}
    block = {lab: i for i, lab in enumerate(labels)}
    for i, a in enumerate(labels):  # union of free pairs; q is small
        for b in labels[i + 1 :]:
            if frozenset((a, b)) not in zero_set and block[a] != block[b]:
                old, new = block[b], block[a]
                block = {k: new if v == old else v for k, v in block.items()}
    order: dict[int, list[str]] = {}
    for lab in labels:
        order.setdefault(block[lab], []).append(lab)
    return tuple(tuple(v) for v in order.values())


def _times(coef: str, e: Expr | None) -> str:
    return coef if e is None else f"{coef}*{e.text()}"


@dataclass(frozen=True)
class ModelSpec:
    """A two-level model as written in equations.

    Equality ignores where things were written (spans, line numbers, source text), so two
    notations of one model compare equal.

    Attributes
    ----------
    outcome
        The level-1 outcome (usually a :class:`~mlmwrap.language.expr.Var`; may be ``log(y)``).
    betas
        The level-1 coefficients in level-1 order.
    residual
        ``'e'`` or ``'r'`` as written (no subscript; ``ε`` gives ``'e'``), ``None`` if left out.
    zero_covariances
        The covariances fixed at 0 by ``cov(u0, u1) = 0`` lines: pairs of random-effect
        labels, each pair and the pairs in the order of the betas. Empty: tau unstructured.
    source
        The whole equations text.
    lines
        Line number -> line text, for errors found later to point at.
    """

    outcome: Expr
    betas: tuple[Beta, ...]
    residual: str | None
    zero_covariances: tuple[tuple[str, str], ...] = ()
    source: str = field(default="", compare=False, repr=False)
    lines: dict[int, str] = field(default_factory=dict, compare=False, repr=False, hash=False)

    @property
    def gammas(self) -> tuple[Gamma, ...]:
        """Every gamma, in beta order."""
        return tuple(g for b in self.betas for g in b.gammas)

    @property
    def random_betas(self) -> tuple[Beta, ...]:
        """The betas with a random effect."""
        return tuple(b for b in self.betas if b.random)

    @property
    def fixed_terms(self) -> tuple[FixedTerm, ...]:
        """The reduced form's fixed part, one term per gamma, in beta order."""
        return tuple(FixedTerm(g, b.predictor, g.predictor) for b in self.betas for g in b.gammas)

    @property
    def formulas(self):
        """The reduced form as patsy and lme4 formulas, names as written
        (:func:`mlmwrap.language.formulas.reduced_formulas`; ``res.formulas`` has the data's
        columns and the cluster)."""
        from mlmwrap.language.formulas import reduced_formulas

        return reduced_formulas(self)

    @property
    def zero_mean_betas(self) -> tuple[Beta, ...]:
        """Random betas whose mean is fixed at 0 (``b1 = u1``): no gamma, random part only."""
        return tuple(b for b in self.betas if b.random and not b.gammas)

    @property
    def tau_blocks(self) -> tuple[tuple[str, ...], ...]:
        """The blocks of tau: groups of random effects whose covariances are free, in the
        order of the betas (one block when no covariance is fixed at 0).

        Examples
        --------
        >>> from mlmwrap.language.equations import parse_equations
        >>> spec = parse_equations(
        ...     "y = b0 + b1*x + b2*z + e\\n b0 = g00 + u0\\n b1 = g10 + u1\\n b2 = u2\\n"
        ...     " cov(u0, u2) = 0\\n cov(u1, u2) = 0"
        ... )
        >>> spec.tau_blocks
        (('u0', 'u1'), ('u2',))
        """
        labels = [str(b.u_label) for b in self.random_betas]
        return covariance_blocks(labels, self.zero_covariances)

    def beta(self, index: int) -> Beta:
        """The beta with index K (raises ``KeyError`` if there is none)."""
        for b in self.betas:
            if b.index == index:
                return b
        raise KeyError(index)

    def level1_text(self) -> str:
        """The level-1 equation, e.g. ``'mathach = b0 + b1*cwc(ses) + e'``."""
        terms = [_times(b.label, b.predictor) for b in self.betas]
        terms.append(self.residual or "e")
        return f"{self.outcome.text()} = {' + '.join(terms)}"

    def level2_text(self) -> str:
        """The level-2 equations, one a line, in level-1 order, then the ``cov`` lines."""
        return "\n".join([*(b.level2_text() for b in self.betas), *self.covariance_lines()])

    def covariance_lines(self) -> list[str]:
        """One ``cov(u0, u1) = 0`` line per covariance fixed at 0."""
        return [f"cov({a}, {b}) = 0" for a, b in self.zero_covariances]

    def reduced_text(self) -> str:
        """The reduced (mixed) form: level 2 substituted into level 1."""
        terms = [_times(t.label, t.expr) for t in self.fixed_terms]
        terms += [_times(str(b.u_label), b.predictor) for b in self.random_betas]
        terms.append(self.residual or "e")
        return f"{self.outcome.text()} = {' + '.join(terms)}"

    def __str__(self) -> str:
        def indent(s: str) -> str:
            return "\n".join("  " + line for line in s.splitlines())

        return (
            f"Level 1:\n{indent(self.level1_text())}\n"
            f"Level 2:\n{indent(self.level2_text())}\n"
            f"Reduced form:\n{indent(self.reduced_text())}"
        )
