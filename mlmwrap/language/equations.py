"""Read level-1 and level-2 equations: text -> tokens -> syntax tree -> :class:`ModelSpec`.

Each stage is a pure function that can be called on its own: :func:`tokenize` splits a
line into tokens, :func:`parse_tree` turns the text into one :class:`Equation` per
equation (coefficients are still plain names there), and :func:`parse_equations` reads
the names (``b1``, ``γ01``, ``u0j``, ``e``), checks that the equations describe a
two-level model and returns a :class:`~mlmwrap.language.spec.ModelSpec`. Nothing here knows about
data. Every problem raises :class:`~mlmwrap.errors.EquationSyntaxError` (the text cannot
be read) or :class:`~mlmwrap.errors.SpecificationError` (it reads, but is not a valid
model), carrying the line and the column span of the offending token.

Examples
--------
>>> spec = parse_equations('''
...     mathach = b0 + b1*cwc(ses) + e
...     b0 = g00 + g01*meanses + g02*sector + u0
...     b1 = g10 + g11*meanses + g12*sector + u1
... ''')
>>> print(spec.reduced_text())  # doctest: +NORMALIZE_WHITESPACE
mathach = g00 + g01*meanses + g02*sector + g10*cwc(ses) + g11*cwc(ses)*meanses
          + g12*cwc(ses)*sector + u0 + u1*cwc(ses) + e
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlmwrap.errors import EquationSyntaxError, SpecificationError
from mlmwrap.language.expr import Call, Expr, Num, Power, Product, Span, Var, product
from mlmwrap.language.spec import Beta, Gamma, ModelSpec, covariance_blocks
from mlmwrap.language.syntax import (
    COV,
    Coefficient,
    Equation,
    Token,
    classify_name,
    parse_tree,
    split_lines,
    tokenize,
)

__all__ = ["Token", "Equation", "tokenize", "split_lines", "parse_tree", "parse_equations"]


def _gamma_label(k: int, m: int) -> str:
    return f"g{k}{m}" if k < 10 and m < 10 else f"g{k}_{m}"


# --------------------------------------------------------------------------------------
# Syntax tree -> ModelSpec
# --------------------------------------------------------------------------------------


def spec_error(
    eq: Equation, span: Span, message: str, expected: str | None = None, hint: str | None = None
) -> SpecificationError:
    """A SpecificationError pointing at ``span`` of equation ``eq`` (any number of levels)."""
    return SpecificationError(
        message,
        source=eq.line,
        lineno=eq.lineno,
        span=(span.start, span.end),
        expected=expected,
        hint=hint,
    )


def product_factors(term: Expr) -> tuple[Expr, ...]:
    return term.factors if isinstance(term, Product) else (term,)


@dataclass
class _Term:
    """A term split into its coefficients and its predictor factors."""

    expr: Expr
    coefs: list[tuple[Var, Coefficient]]
    predictor: Expr | None


def _split_term(eq: Equation, term: Expr) -> _Term:
    coefs: list[tuple[Var, Coefficient]] = []
    preds: list[Expr] = []
    for f in product_factors(term):
        if isinstance(f, Var) and (c := classify_name(f.name)) is not None:
            coefs.append((f, c))
        elif isinstance(f, Num):
            if f.value != 1:
                raise spec_error(
                    eq,
                    f.span,
                    f"the number {f.text()} cannot multiply a term",
                    expected="a coefficient times predictors, e.g. b1*x",
                    hint="coefficients are estimated, not written",
                )
        else:
            check_predictor(eq, f)
            preds.append(f)
    if not coefs and not preds:
        raise spec_error(
            eq,
            term.span,
            f"the number '{term.text()}' alone is not a term",
            expected="a coefficient, e.g. b0, b1*x, g00 or g01*w",
            hint="the intercept is written b0 in level 1 (b0 = g00 + u0 in level 2)",
        )
    return _Term(term, coefs, product(preds))


def _single_coefficient(eq: Equation, t: _Term, what: str) -> tuple[Var, Coefficient]:
    """The one coefficient of a term; two multiplied together is an error."""
    if len(t.coefs) > 1:
        var = t.coefs[1][0]
        raise spec_error(
            eq,
            var.span,
            f"two coefficients multiplied: '{t.coefs[0][0].name}' and '{var.name}'",
            expected=f"one {what} a term",
        )
    return t.coefs[0]


def cov_call(e: Expr) -> Call | None:
    """A ``cov(...)`` call anywhere inside ``e``."""
    if isinstance(e, Call):
        if e.func == COV:
            return e
        return next((c for a in e.args if (c := cov_call(a)) is not None), None)
    if isinstance(e, Product):
        return next((c for f in e.factors if (c := cov_call(f)) is not None), None)
    if isinstance(e, Power):
        return cov_call(e.base)
    return None


def check_predictor(eq: Equation, e: Expr) -> None:
    if (cov := cov_call(e)) is not None:
        raise spec_error(
            eq,
            cov.span,
            f"'{cov.text()}' is not a predictor",
            expected="a variable or a function of variables",
            hint="a covariance is fixed on a line of its own: cov(u0, u1) = 0",
        )
    for v in e.variables():
        c = classify_name(v.name)
        if c is not None:
            raise spec_error(
                eq,
                v.span,
                f"'{v.name}' is a coefficient and cannot stand inside '{e.text()}'",
                expected="a variable name",
                hint="a coefficient multiplies a predictor from outside, e.g. b1*cwc(x)",
            )
    if not e.variables():
        raise spec_error(
            eq,
            e.span,
            f"'{e.text()}' is a constant, not a predictor",
            expected="a predictor with a variable in it, e.g. log(x)",
        )


def _lhs_beta(eq: Equation) -> tuple[Var, int] | None:
    """The beta on the left of a level-2 equation, or None for a level-1 equation."""
    if len(eq.lhs) != 1:
        span = eq.lhs[0].span.cover(eq.lhs[-1].span)
        raise spec_error(
            eq,
            span,
            "the left side of an equation must be a single name",
            expected="the outcome (level 1) or a beta (level 2) before '='",
            hint="e.g. 'mathach = b0 + e' or 'b0 = g00 + u0'",
        )
    lhs = eq.lhs[0]
    factors = product_factors(lhs)
    coefs = [(f, c) for f in factors if isinstance(f, Var) and (c := classify_name(f.name))]
    if coefs:
        var, c = coefs[0]
        if c.kind != "beta":
            what = {"gamma": "a gamma", "u": "a random effect", "residual": "the residual"}
            raise spec_error(
                eq,
                var.span,
                f"{what[c.kind]} '{var.name}' cannot be on the left of '='",
                expected="the outcome (level 1) or a beta such as b1 (level 2)",
                hint="level-2 equations read 'b1 = g10 + g11*w + u1'",
            )
        if len(factors) > 1:
            raise spec_error(
                eq,
                lhs.span,
                f"'{lhs.text()}' on the left of '='",
                expected=f"the beta alone: {var.name} = ...",
            )
        return var, int(c.digits)
    if isinstance(lhs, (Product, Num)):
        raise spec_error(
            eq,
            lhs.span,
            f"'{lhs.text()}' cannot be the outcome",
            expected="a single variable (or a transform such as log(y))",
        )
    check_predictor(eq, lhs)
    # a level-2 equation with a mistyped beta reads like a second outcome: say so
    rhs = [
        c
        for t in eq.rhs
        for f in product_factors(t)
        if isinstance(f, Var) and (c := classify_name(f.name))
    ]
    gammas = [c for c in rhs if c.kind == "gamma"]
    betas = [c for c in rhs if c.kind in ("beta", "residual")]
    if gammas and not betas:
        k = gammas[0].digits[:-1] or gammas[0].digits
        raise spec_error(
            eq,
            lhs.span,
            f"'{lhs.text()}' is not a beta",
            expected="a beta on the left of a level-2 equation",
            hint=f"write b{int(k)} = ...",
        )
    return None


@dataclass
class _Level1:
    eq: Equation
    outcome: Expr
    betas: list[tuple[Var, int, Expr | None]]
    residual: str | None


def _read_level1(eq: Equation) -> _Level1:
    betas: list[tuple[Var, int, Expr | None]] = []
    residual: str | None = None
    residual_seen = False
    predictors: dict[Expr, Expr] = {}
    for term in eq.rhs:
        t = _split_term(eq, term)
        for var, c in t.coefs:
            if c.kind == "u":
                raise spec_error(
                    eq,
                    var.span,
                    f"random effect '{var.name}' in the level-1 equation",
                    expected="betas (b0, b1*x, ...) and the residual e",
                    hint=f"random effects belong in level-2 equations: b{int(c.digits)} = "
                    f"{_gamma_label(int(c.digits), 0)} + u{int(c.digits)}",
                )
            if c.kind == "gamma":
                what = f"'{var.name}' times a predictor" if t.predictor else f"'{var.name}'"
                raise spec_error(
                    eq,
                    var.span,
                    f"gamma {what} in the level-1 equation",
                    expected="a beta, e.g. b1*x",
                    hint="gammas belong in level-2 equations: write b1*x in level 1 and "
                    "b1 = g10 + ... in level 2",
                )
        if not t.coefs:
            assert t.predictor is not None
            used = [k for _, k, _ in betas]
            nxt = max(used) + 1 if used else 1
            hint = f"write b{nxt}*{t.predictor.text()}"
            if isinstance(term, Var) and (
                m := re.fullmatch(r"((?:b|β|beta)_?[0-9]+)(.+)", term.name, re.IGNORECASE)
            ):
                hint = f"put '*' or a space between the beta and the variable: {m[1]}*{m[2]}"
            raise spec_error(
                eq,
                term.span,
                f"the term '{term.text()}' has no beta",
                expected="a beta times the predictor",
                hint=hint,
            )
        var, c = _single_coefficient(eq, t, "beta")
        if c.kind == "residual":
            if t.predictor is not None:
                raise spec_error(
                    eq,
                    term.span,
                    f"the residual '{var.name}' cannot multiply a predictor",
                    expected=f"'{var.name}' alone",
                )
            if residual_seen:
                raise spec_error(
                    eq,
                    var.span,
                    f"a second residual '{var.name}'",
                    expected="one residual term",
                    hint="remove the repeated residual",
                )
            residual, residual_seen = c.digits, True
            continue
        k = int(c.digits)
        for seen, sk, _ in betas:
            if sk == k:
                raise spec_error(
                    eq,
                    var.span,
                    f"b{k} appears twice in the level-1 equation (first as '{seen.name}')",
                    expected="a new beta number",
                    hint="number each level-1 coefficient once: b0, b1, b2, ...",
                )
        if k == 0 and t.predictor is not None:
            raise spec_error(
                eq,
                term.span,
                f"b0 is the intercept; '{term.text()}' gives it a predictor",
                expected="b0 alone",
                hint=f"number the slopes from 1: b1*{t.predictor.text()}",
            )
        if k != 0 and t.predictor is None:
            raise spec_error(
                eq,
                var.span,
                f"'{var.name}' has no predictor",
                expected=f"{var.name} times a predictor, e.g. {var.name}*x",
                hint="only b0, the intercept, stands alone",
            )
        if t.predictor is not None:
            if t.predictor in predictors:
                raise spec_error(
                    eq,
                    t.predictor.span,
                    f"the predictor '{t.predictor.text()}' appears twice",
                    expected="each level-1 predictor once",
                )
            predictors[t.predictor] = t.predictor
        betas.append((var, k, t.predictor))
    if not betas:
        span = eq.rhs[0].span.cover(eq.rhs[-1].span)
        raise spec_error(
            eq,
            span,
            "the level-1 equation has no beta",
            expected="at least the intercept b0",
            hint=f"write {eq.lhs[0].text()} = b0 + e",
        )
    return _Level1(eq, eq.lhs[0], betas, residual)


@dataclass
class _Level2:
    eq: Equation
    beta_var: Var
    k: int
    gammas: list[Gamma]
    u: Var | None


def _gamma_km(eq: Equation, var: Var, c: Coefficient, k: int, suggest_m: int) -> tuple[int, int]:
    ks = str(k)
    if c.second is not None:
        gk, gm = int(c.digits), int(c.second)
    elif len(c.digits) > len(ks) and c.digits.startswith(ks):
        gk, gm = k, int(c.digits[len(ks) :])
    else:
        gk, gm = -1, -1
    if gk != k:
        raise spec_error(
            eq,
            var.span,
            f"'{var.name}' is not a gamma of b{k}",
            expected=f"a gamma numbered g{k}M in the equation for b{k} "
            f"({_gamma_label(k, 0)} for the constant, {_gamma_label(k, 1)}, "
            f"{_gamma_label(k, 2)}, ... for the predictors)",
            hint=f"did you mean '{_gamma_label(k, suggest_m)}'?",
        )
    return gk, gm


def _read_level2(eq: Equation, beta_var: Var, k: int) -> _Level2:
    gammas: list[Gamma] = []
    u: Var | None = None
    seen: dict[int, Var] = {}
    predictors: set[Expr] = set()
    zero: Num | None = None  # '0 +': the mean of the beta is fixed at 0
    for term in eq.rhs:
        if isinstance(term, Num) and term.value == 0:
            if zero is not None:
                raise spec_error(eq, term.span, "'0' appears twice", expected="'0' once")
            zero = term
            continue
        t = _split_term(eq, term)
        for var, c in t.coefs:
            if c.kind == "beta":
                raise spec_error(
                    eq,
                    var.span,
                    f"beta '{var.name}' on the right side of a level-2 equation",
                    expected=f"gammas (with their predictors) and the random effect u{k}",
                    hint=f"a level-2 equation predicts one beta: b{k} = "
                    f"{_gamma_label(k, 0)} + {_gamma_label(k, 1)}*w + u{k}",
                )
            if c.kind == "residual":
                raise spec_error(
                    eq,
                    var.span,
                    f"residual '{var.name}' in a level-2 equation",
                    expected=f"gammas and the random effect u{k}",
                    hint="the level-1 residual belongs in the level-1 equation; "
                    f"the random part of b{k} is u{k}",
                )
        if not t.coefs:
            assert t.predictor is not None
            nxt = max([m for m in seen if m > 0], default=0) + 1
            raise spec_error(
                eq,
                term.span,
                f"the term '{term.text()}' has no gamma",
                expected="a gamma times the predictor",
                hint=f"write {_gamma_label(k, nxt)}*{t.predictor.text()}",
            )
        var, c = _single_coefficient(eq, t, "gamma")
        if c.kind == "u":
            if int(c.digits) != k:
                raise spec_error(
                    eq,
                    var.span,
                    f"'{var.name}' in the equation for b{k}",
                    expected=f"u{k}, the random effect of b{k}",
                    hint=f"write u{k}",
                )
            if t.predictor is not None:
                raise spec_error(
                    eq,
                    term.span,
                    f"the random effect '{var.name}' cannot multiply a predictor",
                    expected=f"u{k} alone",
                    hint=f"a random effect of {t.predictor.text()} needs its own beta in level 1",
                )
            if u is not None:
                raise spec_error(eq, var.span, f"u{k} appears twice", expected=f"u{k} once")
            u = var
            continue
        m_suggest = 0 if t.predictor is None else max([0, *seen]) + 1
        _, m = _gamma_km(eq, var, c, k, m_suggest)
        # The label as written (g100 stays g100), in the g notation (gamma01, γ01 -> g01).
        label = f"g{c.digits}" if c.second is None else _gamma_label(k, m)
        if m in seen:
            raise spec_error(
                eq,
                var.span,
                f"{label} appears twice (first as '{seen[m].name}')",
                expected="each gamma once",
                hint=f"number the predictors' gammas {_gamma_label(k, 1)}, "
                f"{_gamma_label(k, 2)}, ...",
            )
        if m == 0 and t.predictor is not None:
            raise spec_error(
                eq,
                var.span,
                f"{label} is the constant of b{k} but multiplies '{t.predictor.text()}'",
                expected=f"{label} alone",
                hint=f"give the predictor its own number: "
                f"{_gamma_label(k, m_suggest)}*{t.predictor.text()}",
            )
        if m != 0 and t.predictor is None:
            raise spec_error(
                eq,
                var.span,
                f"{label} has no predictor",
                expected=f"{label} times a level-2 predictor",
                hint=f"the constant of b{k} is {_gamma_label(k, 0)}",
            )
        if t.predictor is not None:
            if t.predictor in predictors:
                raise spec_error(
                    eq,
                    t.predictor.span,
                    f"the predictor '{t.predictor.text()}' appears twice",
                    expected="each level-2 predictor once in an equation",
                )
            predictors.add(t.predictor)
        seen[m] = var
        gammas.append(Gamma(label, k, m, t.predictor, var.span))
    constant = next((g for g in gammas if g.position == 0), None)
    if zero is not None and constant is not None:
        raise spec_error(
            eq,
            constant.span,
            f"'0' fixes the mean of b{k} at 0, but {constant.label} estimates it",
            expected=f"either '0 + u{k}' (mean 0) or '{constant.label} + u{k}' (mean estimated)",
            hint=f"remove '0 +' or remove {constant.label}",
        )
    if not gammas and u is None:
        span = eq.rhs[0].span.cover(eq.rhs[-1].span)
        if zero is not None:
            raise spec_error(
                eq,
                span,
                f"b{k} = 0 takes its predictor out of the model",
                expected=f"a gamma ({_gamma_label(k, 0)}) or a random effect with mean 0 (u{k})",
                hint=f"remove b{k} from the level-1 equation, or write b{k} = u{k}",
            )
        raise spec_error(
            eq,
            span,
            f"the equation for b{k} has no gamma",
            expected=f"at least the constant {_gamma_label(k, 0)}",
            hint=f"write b{k} = {_gamma_label(k, 0)} (or b{k} = u{k} for a random effect "
            "with mean 0)",
        )
    return _Level2(eq, beta_var, k, gammas, u)


@dataclass
class _Covariance:
    eq: Equation
    first: tuple[Var, int]  # (as written, K of uK)
    second: tuple[Var, int]


def _read_cov(eq: Equation) -> _Covariance:
    """``cov(u0, u1) = 0``: a covariance of tau fixed at zero."""
    call = eq.lhs[0]
    assert isinstance(call, Call)
    expected = "cov(uK, uM) = 0 with two random effects of the model, e.g. cov(u0, u1) = 0"
    effects: list[tuple[Var, int]] = []
    for arg in call.args:
        c = classify_name(arg.name) if isinstance(arg, Var) else None
        if c is None or c.kind != "u":
            raise spec_error(
                eq,
                arg.span,
                f"'{arg.text()}' is not a random effect",
                expected=expected,
                hint="a covariance is between two random effects uK of the level-2 equations",
            )
        effects.append((arg, int(c.digits)))
    (va, ka), (vb, kb) = effects
    if ka == kb:
        raise spec_error(
            eq,
            call.span,
            f"'{call.text()}' is the variance of u{ka}, not a covariance",
            expected=expected,
            hint=f"to drop the random effect, remove '+ u{ka}' from the b{ka} equation",
        )
    if len(eq.rhs) != 1 or not isinstance(eq.rhs[0], Num) or eq.rhs[0].value != 0:
        span = eq.rhs[0].span.cover(eq.rhs[-1].span)
        fixed = isinstance(eq.rhs[0], Num) and len(eq.rhs) == 1
        raise spec_error(
            eq,
            span,
            f"a covariance can only be fixed at 0, not at '{eq.rhs[-1].text()}'"
            if fixed
            else f"'{call.text()} = ...' must be followed by 0",
            expected=expected,
            hint="remove the line to estimate the covariance",
        )
    if len(eq.lhs) != 1:  # pragma: no cover - the caller checks
        raise spec_error(eq, eq.lhs[1].span, "one cov() a line", expected=expected)
    return _Covariance(eq, (va, ka), (vb, kb)) if ka < kb else _Covariance(eq, (vb, kb), (va, ka))


def _zero_covariances(covs: list[_Covariance], betas: list[Beta]) -> tuple[tuple[str, str], ...]:
    """Check the ``cov`` lines against the betas; the pairs, in beta order."""
    by_index = {b.index: b for b in betas}
    order = {b.index: i for i, b in enumerate(betas)}
    pairs: dict[tuple[int, int], _Covariance] = {}
    for cov in covs:
        for var, k in (cov.first, cov.second):
            beta = by_index.get(k)
            if beta is None:
                raise spec_error(
                    cov.eq,
                    var.span,
                    f"'{var.name}' is not a random effect of the model (there is no b{k})",
                    expected="random effects uK of the level-2 equations: "
                    + ", ".join(str(b.u_label) for b in betas if b.random),
                    hint="check the number",
                )
            if not beta.random:
                raise spec_error(
                    cov.eq,
                    var.span,
                    f"b{k} is fixed (its equation has no u{k}), so it has no covariance",
                    expected="random effects uK of the level-2 equations: "
                    + ", ".join(str(b.u_label) for b in betas if b.random),
                    hint=f"add '+ u{k}' to the b{k} equation, or remove this line",
                )
        key = tuple(sorted((cov.first[1], cov.second[1]), key=order.__getitem__))
        pairs.setdefault(key, cov)  # a repeated line says the same thing again
    labels = [str(b.u_label) for b in betas if b.random]
    zero = tuple(
        (f"u{a}", f"u{b}") for a, b in sorted(pairs, key=lambda p: (order[p[0]], order[p[1]]))
    )
    zero_set = {frozenset(p) for p in zero}
    for block in covariance_blocks(labels, zero):
        for i, a in enumerate(block):
            for b in block[i + 1 :]:
                if frozenset((a, b)) not in zero_set:
                    continue
                # a and b are linked through free covariances but their own one is 0
                via = next(
                    c
                    for c in block
                    if c not in (a, b)
                    and (frozenset((a, c)) not in zero_set or frozenset((b, c)) not in zero_set)
                )
                ka, kb = int(a[1:]), int(b[1:])
                cov = pairs[tuple(sorted((ka, kb), key=order.__getitem__))]
                raise spec_error(
                    cov.eq,
                    cov.eq.lhs[0].span,
                    f"cov({a}, {b}) = 0 leaves a tau that is not block-diagonal: {a} and {b} "
                    f"are still tied through their free covariances with {via}",
                    expected="cov lines that split the random effects into groups, every "
                    "covariance between two groups fixed at 0 and every one within a group "
                    "free (a diagonal tau, or blocks such as (u0, u1) and (u2))",
                    hint=f"fix the covariances of {via} with {a} or with {b} at 0 too, or "
                    "remove this line",
                )
    return zero


def parse_equations(text: str) -> ModelSpec:
    """Read a two-level model written as equations.

    Parameters
    ----------
    text
        One equation a line: the level-1 equation ``OUTCOME = b0 + b1*X1 + ... + e`` and
        one level-2 equation ``bK = gK0 + gK1*W1 + ... + uK`` for each beta (``uK`` makes
        the beta random; ``bK = uK`` or ``bK = 0 + uK`` is a random effect with mean 0).
        A line ``cov(u0, u1) = 0`` fixes a covariance of tau at 0; several give a
        block-diagonal or diagonal tau. Blank lines and ``#`` comments are ignored. Greek
        letters and cluster subscripts (``β1j``, ``γ01``, ``u0j``, ``r_ij``), words (``beta1``,
        ``gamma01``) and juxtaposition (``b1 x``) are read too.

    Returns
    -------
    ModelSpec
        Outcome, betas with their gammas and random effects, and the reduced form.

    Raises
    ------
    EquationSyntaxError
        The text cannot be read (bad character, unbalanced parenthesis, missing '=', ...).
    SpecificationError
        The equations do not describe a two-level model (a beta without level-2
        equation, ``u`` in level 1, a duplicate label, no random effect, ...).

    Examples
    --------
    >>> spec = parse_equations('''
    ...     y_ij = β0j + β1j*x_ij + r_ij
    ...     β0j = γ00 + γ01*w_j + u0j
    ...     β1j = γ10
    ... ''')
    >>> print(spec.reduced_text())
    y_ij = g00 + g01*w_j + g10*x_ij + u0 + r
    >>> [(g.label, g.beta, g.position) for g in spec.gammas]
    [('g00', 0, 0), ('g01', 0, 1), ('g10', 1, 0)]
    """
    if not isinstance(text, str):
        raise EquationSyntaxError(f"the equations must be a string, not {type(text).__name__}")
    equations = parse_tree(text)
    if not equations:
        raise EquationSyntaxError(
            "no equations given",
            expected="a level-1 equation and one level-2 equation a beta",
            hint="e.g. 'mathach = b0 + e' and 'b0 = g00 + u0' on two lines",
        )
    level1: _Level1 | None = None
    level2: dict[int, _Level2] = {}
    covs: list[_Covariance] = []
    for eq in equations:
        if any(cov_call(t) is not None for t in eq.lhs):
            if len(eq.lhs) != 1 or not (isinstance(eq.lhs[0], Call) and eq.lhs[0].func == COV):
                call = next(c for t in eq.lhs if (c := cov_call(t)) is not None)
                raise spec_error(
                    eq,
                    call.span,
                    f"'{call.text()}' must stand alone on the left of '='",
                    expected="one covariance a line: cov(u0, u1) = 0",
                )
            covs.append(_read_cov(eq))
            continue
        lhs = _lhs_beta(eq)
        if lhs is None:
            if level1 is not None:
                raise spec_error(
                    eq,
                    eq.lhs[0].span,
                    f"more than one level-1 equation (line {level1.eq.lineno} is one already)",
                    expected="a beta on the left of a level-2 equation",
                    hint="a model has one outcome; level-2 equations read 'b1 = g10 + u1'",
                )
            level1 = _read_level1(eq)
        else:
            var, k = lhs
            if k in level2:
                raise spec_error(
                    eq,
                    var.span,
                    f"a second level-2 equation for b{k} "
                    f"(line {level2[k].eq.lineno} is one already)",
                    expected="one equation a beta",
                    hint="merge the two lines into one",
                )
            level2[k] = _read_level2(eq, var, k)
    if level1 is None:
        eq = equations[0]
        raise spec_error(
            eq,
            eq.lhs[0].span,
            "no level-1 equation: every equation has a beta on its left",
            expected="an equation with the outcome on the left",
            hint="add a line such as 'y = b0 + b1*x + e'",
        )
    betas: list[Beta] = []
    for var, k, predictor in level1.betas:
        if k not in level2:
            line = f"b{k} = {_gamma_label(k, 0)} + u{k}"
            raise spec_error(
                level1.eq,
                var.span,
                f"b{k} has no level-2 equation",
                expected=f"a line '{line}' (random) or 'b{k} = {_gamma_label(k, 0)}' (fixed)",
                hint=f"add the line: {line}",
            )
        l2 = level2[k]
        u = l2.u
        betas.append(
            Beta(
                index=k,
                label=f"b{k}",
                predictor=predictor,
                gammas=tuple(l2.gammas),
                random=u is not None,
                u_label=None if u is None else f"u{k}",
                span=var.span,
                level2_lineno=l2.eq.lineno,
                u_span=None if u is None else u.span,
            )
        )
    in_level1 = {k for _, k, _ in level1.betas}
    for k, l2 in level2.items():
        if k not in in_level1:
            raise spec_error(
                l2.eq,
                l2.beta_var.span,
                f"a level-2 equation for b{k}, which is not in the level-1 equation",
                expected="a beta of the level-1 equation",
                hint=f"add '+ b{k}*x' to the level-1 equation, or remove this line",
            )
    if not any(b.random for b in betas):
        first = level2.get(0) or next(iter(level2.values()))
        eq = first.eq
        k = first.k
        raise spec_error(
            eq,
            eq.span,
            "the model has no random effect",
            expected=f"a random effect uK in a level-2 equation, e.g. u{k}",
            hint=f"add '+ u{k}' to the b{k} equation; without a random effect "
            "the model is an ordinary regression",
        )
    if not any(b.gammas for b in betas):
        eq = level2[betas[0].index].eq
        raise spec_error(
            eq,
            eq.span,
            "the model has no gamma: every beta has its mean fixed at 0",
            expected=f"at least one gamma, e.g. b{betas[0].index} = "
            f"{_gamma_label(betas[0].index, 0)} + u{betas[0].index}",
            hint="a random effect with mean 0 (bK = uK) needs other terms with a gamma",
        )
    zero_covariances = _zero_covariances(covs, betas)
    lines = {i: line for i, line in enumerate(split_lines(text), start=1)}
    return ModelSpec(
        outcome=level1.outcome,
        betas=tuple(betas),
        residual=level1.residual,
        zero_covariances=zero_covariances,
        source=text,
        lines=lines,
    )
