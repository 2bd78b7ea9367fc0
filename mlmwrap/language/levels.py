"""Read three-level equations (HLM3 notation) into a :class:`NestedSpec`.

A model is three-level when a level-2 equation predicts a level-1 coefficient ``pK`` (π):
``p0 = b00 + b01*w + r0``, whose coefficients ``bKM`` (β) have level-3 equations
``b00 = g000 + g001*z + u00``. Everything else (two-level b/g/u models) goes to
:func:`mlmwrap.language.equations.parse_equations` unchanged. Names with Greek letters and
subscripts are read as well: ``π0jk``, ``β00k``, ``γ000``, ``r0jk``, ``u00k``, ``e_ijk``.

Examples
--------
>>> spec = parse_model('''
...     math = π0jk + π1jk*year + e_ijk
...     π0jk = β00k + r0jk
...     π1jk = β10k + r1jk
...     β00k = γ000 + u00k
...     β10k = γ100 + u10k
... ''')
>>> spec.n_levels, spec.random_labels
(3, (('r0', 'r1'), ('u00', 'u10')))
>>> [g.label for g in spec.gammas]
['g000', 'g100']
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlmwrap.errors import EquationSyntaxError
from mlmwrap.language.equations import (
    check_predictor,
    cov_call,
    parse_equations,
    product_factors,
    spec_error,
)
from mlmwrap.language.expr import Call, Expr, Num, Var, product
from mlmwrap.language.nested_spec import (
    NestedCoefficient,
    NestedGamma,
    NestedRandom,
    NestedSpec,
    index_label,
)
from mlmwrap.language.spec import ModelSpec, covariance_blocks
from mlmwrap.language.syntax import Equation, parse_tree, split_lines

__all__ = ["parse_model", "parse_three_level", "is_three_level"]

_SUB = r"((?:[0-9]+_)*[0-9]+)"
_NAMES = {
    "p": re.compile(rf"(?:p|π|pi)_?{_SUB}(?:_?jk)?", re.IGNORECASE),
    "b": re.compile(rf"(?:b|β|beta)_?{_SUB}(?:_?k)?", re.IGNORECASE),
    "g": re.compile(rf"(?:g|γ|gamma)_?{_SUB}", re.IGNORECASE),
    "r": re.compile(rf"r_?{_SUB}(?:_?jk)?", re.IGNORECASE),
    "u": re.compile(rf"u_?{_SUB}(?:_?k)?", re.IGNORECASE),
}
_RESIDUAL = re.compile(r"(?:e|ε|ϵ)(?:_?(?:ijk|ij|i))?")
_WHAT = {
    "p": "a level-1 coefficient",
    "b": "a level-2 coefficient",
    "g": "a gamma",
    "r": "a level-2 random effect",
    "u": "a level-3 random effect",
    "e": "the level-1 residual",
}
#: How many subscripts each kind carries.
_N_SUB = {"p": 1, "b": 2, "g": 3, "r": 1, "u": 2}


@dataclass(frozen=True)
class _Name:
    kind: str  # p, b, g, r, u or e
    digits: str


def _classify(name: str) -> _Name | None:
    if _RESIDUAL.fullmatch(name):
        return _Name("e", "")
    for kind, pattern in _NAMES.items():
        if m := pattern.fullmatch(name):
            return _Name(kind, m.group(1))
    return None


def _subscripts(eq: Equation, var: Var, name: _Name, prefix: tuple[int, ...]) -> tuple[int, ...]:
    """The subscripts of ``var`` (``b01`` -> (0, 1)); they must begin with ``prefix``."""
    n = _N_SUB[name.kind]
    d = name.digits
    parts = d.split("_") if "_" in d else (list(d) if len(d) == n else None)
    example = index_label(name.kind, (*prefix, *(0,) * (n - len(prefix))))
    if parts is None or len(parts) != n:
        raise spec_error(
            eq,
            var.span,
            f"'{var.name}' needs {n} subscript{'s' if n > 1 else ''} in a three-level model",
            expected=f"{_WHAT[name.kind]} such as {example}",
            hint="separate subscripts of two digits with '_', e.g. g1_10_0",
        )
    index = tuple(int(p) for p in parts)
    if index[: len(prefix)] != prefix:
        raise spec_error(
            eq,
            var.span,
            f"wrong subscripts: '{var.name}' does not belong to this equation",
            expected=f"subscripts beginning with {''.join(map(str, prefix))} here, e.g. {example}",
            hint=f"did you mean '{index_label(name.kind, (*prefix, *index[len(prefix) :]))}'?",
        )
    return index


def is_three_level(equations: tuple[Equation, ...]) -> bool:
    """True when an equation has a level-1 coefficient ``pK`` on its left or stands one
    alone as a term (``y = p0 + e``)."""
    for eq in equations:
        for side in (eq.lhs, eq.rhs):
            for term in side:
                if isinstance(term, Var) and (n := _classify(term.name)) and n.kind == "p":
                    return True
    return False


def parse_model(text: str) -> ModelSpec | NestedSpec:
    """Read equations of two or three levels (see :func:`parse_three_level`)."""
    if not isinstance(text, str):
        raise EquationSyntaxError(f"the equations must be a string, not {type(text).__name__}")
    equations = parse_tree(text)
    if equations and is_three_level(equations):
        return parse_three_level(text, equations)
    return parse_equations(text)


@dataclass
class _Term:
    coef: tuple[Var, _Name] | None
    predictor: Expr | None
    expr: Expr


def _split(eq: Equation, term: Expr, allowed: str, where: str, hints: dict[str, str]) -> _Term:
    coefs: list[tuple[Var, _Name]] = []
    preds: list[Expr] = []
    for f in product_factors(term):
        if isinstance(f, Var) and (n := _classify(f.name)) is not None:
            if n.kind not in allowed:
                raise spec_error(
                    eq,
                    f.span,
                    f"{_WHAT[n.kind]} '{f.name}' in {where}",
                    expected=hints["expected"],
                    hint=hints.get(n.kind),
                )
            coefs.append((f, n))
        elif isinstance(f, Num) and f.value == 1:
            continue
        else:
            if isinstance(f, Num):
                raise spec_error(
                    eq,
                    f.span,
                    f"the number {f.text()} cannot multiply a term",
                    expected=hints["expected"],
                )
            check_predictor(eq, f)
            preds.append(f)
    if len(coefs) > 1:
        raise spec_error(
            eq, coefs[1][0].span, "two coefficients multiplied", expected="one coefficient a term"
        )
    if not coefs:
        raise spec_error(
            eq,
            term.span,
            f"the term '{term.text()}' has no coefficient",
            expected=hints["expected"],
            hint=hints.get("none"),
        )
    return _Term(coefs[0], product(preds), term)


@dataclass
class _Eq:
    """One equation above level 1: its coefficient, terms and random effect."""

    eq: Equation
    var: Var
    index: tuple[int, ...]
    terms: list[tuple[Var, tuple[int, ...], Expr | None]]
    random: tuple[Var, tuple[int, ...]] | None
    zero: bool


def _read_upper(eq: Equation, var: Var, index: tuple[int, ...], level: int) -> _Eq:
    """A level-2 (``pK = ...``) or level-3 (``bKM = ...``) equation."""
    coef, rand = ("b", "r") if level == 2 else ("g", "u")
    own = index_label(coef, (*index, 0))
    re_label = index_label(rand, index)
    expected = f"{own}, {index_label(coef, (*index, 1))}*w, ... and the random effect {re_label}"
    hints = {
        "expected": expected,
        "u": f"u is a level-3 random effect; the level-2 random effect of {var.name} is {re_label}",
        "r": f"r is a level-2 random effect; the level-3 random effect of {var.name} is {re_label}",
        "g": f"gammas belong in level-3 equations: write {index_label('b', (*index, 0))} here "
        f"and '{index_label('b', (*index, 0))} = {index_label('g', (*index, 0, 0))} + ...' on "
        "a line of its own",
        "b": "level-2 coefficients bKM are written in the equations for pK",
        "p": "a level-2 equation predicts one level-1 coefficient pK",
        "e": "the level-1 residual e belongs in the level-1 equation",
        "none": f"write {index_label(coef, (*index, 1))}*{{predictor}}",
    }
    hints["none"] = f"give the predictor a coefficient, e.g. {index_label(coef, (*index, 1))}*w"
    terms: list[tuple[Var, tuple[int, ...], Expr | None]] = []
    random = None
    zero = False
    for term in eq.rhs:
        if isinstance(term, Num) and term.value == 0:
            zero = True
            continue
        t = _split(eq, term, coef + rand, f"the equation for {var.name}", hints)
        cvar, name = t.coef
        if name.kind == rand:
            ridx = _subscripts(eq, cvar, name, index)
            if t.predictor is not None:
                raise spec_error(
                    eq,
                    term.span,
                    f"the random effect '{cvar.name}' cannot multiply a predictor",
                    expected=f"{re_label} alone",
                )
            if random is not None:
                raise spec_error(eq, cvar.span, f"{re_label} appears twice", expected="once")
            random = (cvar, ridx)
            continue
        cidx = _subscripts(eq, cvar, name, index)
        label = index_label(coef, cidx)
        if any(i == cidx for _, i, _ in terms):
            raise spec_error(
                eq, cvar.span, f"{label} appears twice", expected="each coefficient once"
            )
        if cidx[-1] == 0 and t.predictor is not None:
            raise spec_error(
                eq,
                cvar.span,
                f"{label} is the constant but multiplies '{t.predictor.text()}'",
                expected=f"{label} alone",
                hint=f"number the predictors from 1: "
                f"{index_label(coef, (*index, 1))}*{t.predictor.text()}",
            )
        if cidx[-1] != 0 and t.predictor is None:
            raise spec_error(
                eq,
                cvar.span,
                f"{label} has no predictor",
                expected=f"{label} times a predictor",
                hint=f"the constant is {own}",
            )
        terms.append((cvar, cidx, t.predictor))
    if not terms and random is None:
        raise spec_error(
            eq,
            eq.rhs[0].span.cover(eq.rhs[-1].span),
            f"the equation for {var.name} has no term",
            expected=expected,
            hint=f"write {var.name} = {own}",
        )
    if zero and any(i[-1] == 0 for _, i, _ in terms):
        raise spec_error(
            eq,
            eq.rhs[0].span,
            f"'0' fixes the mean of {var.name} at 0, but {own} estimates it",
            expected="either '0 +' or the constant",
            hint="remove one",
        )
    return _Eq(eq, var, index, terms, random, zero or not any(i[-1] == 0 for _, i, _ in terms))


def _read_level1(eq: Equation) -> tuple[list[tuple[Var, int, Expr | None]], str | None]:
    hints = {
        "expected": "level-1 coefficients p0, p1*x, ... and the residual e",
        "b": "in a three-level model the level-1 coefficients are pK (π); bKM are the "
        "coefficients of the level-2 equations (p0 = b00 + b01*w + r0)",
        "g": "gammas belong in level-3 equations (b00 = g000 + g001*z + u00)",
        "r": "rK is the level-2 random effect: p0 = b00 + r0",
        "u": "uKM is a level-3 random effect: b00 = g000 + u00",
        "none": "give the predictor a coefficient, e.g. p1*x",
    }
    out: list[tuple[Var, int, Expr | None]] = []
    residual = None
    for term in eq.rhs:
        t = _split(eq, term, "pe", "the level-1 equation", hints)
        var, name = t.coef
        if name.kind == "e":
            if t.predictor is not None:
                raise spec_error(
                    eq,
                    term.span,
                    "the residual cannot multiply a predictor",
                    expected=f"'{var.name}' alone",
                )
            if residual is not None:
                raise spec_error(eq, var.span, "a second residual", expected="one residual term")
            residual = "e"
            continue
        (k,) = _subscripts(eq, var, name, ())
        if any(k == j for _, j, _ in out):
            raise spec_error(
                eq, var.span, f"p{k} appears twice", expected="a new coefficient number"
            )
        if k == 0 and t.predictor is not None:
            raise spec_error(
                eq,
                term.span,
                "p0 is the intercept and takes no predictor",
                expected="p0 alone",
                hint=f"write p1*{t.predictor.text()}",
            )
        if k != 0 and t.predictor is None:
            raise spec_error(
                eq,
                var.span,
                f"'{var.name}' has no predictor",
                expected=f"{var.name}*x",
                hint="only p0, the intercept, stands alone",
            )
        out.append((var, k, t.predictor))
    return out, residual


def _read_cov(eq: Equation) -> tuple[Equation, list[tuple[Var, _Name]]]:
    call = eq.lhs[0]
    assert isinstance(call, Call)
    expected = "cov(r0, r1) = 0 (level 2) or cov(u00, u10) = 0 (level 3)"
    names = []
    for arg in call.args:
        n = _classify(arg.name) if isinstance(arg, Var) else None
        if n is None or n.kind not in "ru":
            raise spec_error(
                eq, arg.span, f"'{arg.text()}' is not a random effect", expected=expected
            )
        names.append((arg, n))
    if names[0][1].kind != names[1][1].kind:
        raise spec_error(
            eq,
            call.span,
            f"'{call.text()}' is a covariance across two levels",
            expected=expected,
            hint="random effects of different levels are "
            "independent already; covariances can be fixed at 0 within a level",
        )
    if len(eq.rhs) != 1 or not isinstance(eq.rhs[0], Num) or eq.rhs[0].value != 0:
        raise spec_error(
            eq, eq.rhs[0].span, "a covariance can only be fixed at 0", expected=expected
        )
    return eq, names


def parse_three_level(text: str, equations: tuple[Equation, ...] | None = None) -> NestedSpec:
    """Read a three-level model in the notation of Raudenbush & Bryk (2002, ch. 8).

    Level 1 ``y = p0 + p1*x + e``; one level-2 equation per pK,
    ``pK = bK0 + bK1*w + rK`` (``rK`` makes pK vary across level-2 units); one level-3
    equation per bKM, ``bKM = gKM0 + gKM1*z + uKM``. ``pK = rK`` and ``bKM = uKM`` are random
    effects with mean 0, ``cov(r0, r1) = 0`` / ``cov(u00, u10) = 0`` fix a covariance at 0.

    Raises
    ------
    SpecificationError
        With the line, a caret, what was expected and a tip.
    """
    equations = parse_tree(text) if equations is None else equations
    level1: tuple[Equation, list, str | None] | None = None
    upper: dict[int, dict[tuple[int, ...], _Eq]] = {2: {}, 3: {}}
    covs = []
    for eq in equations:
        if any(cov_call(t) is not None for t in eq.lhs):
            if len(eq.lhs) != 1 or not isinstance(eq.lhs[0], Call):
                raise spec_error(
                    eq,
                    eq.lhs[0].span,
                    "cov() must stand alone on the left",
                    expected="cov(r0, r1) = 0",
                )
            covs.append(_read_cov(eq))
            continue
        if len(eq.lhs) != 1:
            raise spec_error(
                eq,
                eq.lhs[0].span.cover(eq.lhs[-1].span),
                "the left side of an equation must be a single name",
                expected="the outcome, a pK or a bKM before '='",
            )
        lhs = eq.lhs[0]
        name = _classify(lhs.name) if isinstance(lhs, Var) else None
        if name is None:
            if level1 is not None:
                raise spec_error(
                    eq,
                    lhs.span,
                    f"more than one level-1 equation (line {level1[0].lineno} is one already)",
                    expected="pK or bKM on the left of the equation",
                )
            check_predictor(eq, lhs)
            betas, residual = _read_level1(eq)
            level1 = (eq, betas, residual)
            continue
        if name.kind not in "pb":
            raise spec_error(
                eq,
                lhs.span,
                f"{_WHAT[name.kind]} '{lhs.name}' cannot be on the left of '='",
                expected="the outcome, a pK (level 2) or a bKM (level 3)",
                hint="level-2 equations read 'p1 = b10 + r1', level-3 ones 'b10 = g100 + u10'",
            )
        level = 2 if name.kind == "p" else 3
        index = _subscripts(eq, lhs, name, ())
        if index in upper[level]:
            raise spec_error(
                eq,
                lhs.span,
                f"a second equation for {index_label(name.kind, index)} "
                f"(line {upper[level][index].eq.lineno} is one already)",
                expected="one equation a coefficient",
            )
        upper[level][index] = _read_upper(eq, lhs, index, level)
    if level1 is None:
        eq = equations[0]
        raise spec_error(
            eq, eq.lhs[0].span, "no level-1 equation", expected="a line such as 'y = p0 + p1*x + e'"
        )
    eq1, ps, residual = level1
    coefs1, coefs2, gammas = [], [], []
    random2, random3 = [], []
    for var, k, x in ps:
        l2 = upper[2].get((k,))
        if l2 is None:
            line = f"p{k} = b{k}0 + r{k}"
            raise spec_error(
                eq1,
                var.span,
                f"p{k} has no level-2 equation",
                expected=f"a line '{line}' (random) or 'p{k} = b{k}0' (fixed)",
                hint=f"add the line: {line}",
            )
        r_label = index_label("r", (k,)) if l2.random else None
        coefs1.append(
            NestedCoefficient(
                index_label("p", (k,)), (k,), 1, x, r_label, l2.zero, var.span, eq1.lineno
            )
        )
        if l2.random:
            random2.append(NestedRandom(r_label, 2, (x,), l2.random[0].span))
        for bvar, idx, w in l2.terms:
            l3 = upper[3].get(idx)
            blabel = index_label("b", idx)
            if l3 is None:
                line = f"{blabel} = {index_label('g', (*idx, 0))}"
                raise spec_error(
                    l2.eq,
                    bvar.span,
                    f"{blabel} has no level-3 equation",
                    expected=f"a line '{line}' (fixed) or '{line} + "
                    f"{index_label('u', idx)}' (random across level-3 units)",
                    hint=f"add the line: {line}",
                )
            u_label = index_label("u", idx) if l3.random else None
            coefs2.append(
                NestedCoefficient(blabel, idx, 2, w, u_label, l3.zero, bvar.span, l2.eq.lineno)
            )
            if l3.random:
                random3.append(NestedRandom(u_label, 3, (x, w), l3.random[0].span))
            for gvar, gidx, z in l3.terms:
                gammas.append(NestedGamma(index_label("g", gidx), gidx, (x, w, z), gvar.span))
    written = {c.index for c in coefs1}
    for (k,), l2 in upper[2].items():
        if (k,) not in written:
            raise spec_error(
                l2.eq,
                l2.var.span,
                f"an equation for p{k}, which is not in the level-1 equation",
                expected="a coefficient of the level-1 equation",
                hint=f"add '+ p{k}*x' to the level-1 equation, or remove this line",
            )
    written2 = {c.index for c in coefs2}
    for idx, l3 in upper[3].items():
        if idx not in written2:
            label = index_label("b", idx)
            raise spec_error(
                l3.eq,
                l3.var.span,
                f"a level-3 equation for {label}, which is in no level-2 equation",
                expected="a bKM of a level-2 equation",
                hint=f"add '+ {label}' (or '{label}*w') to the equation for p{idx[0]}",
            )
    if not gammas:
        raise spec_error(eq1, eq1.span, "the model has no gamma", expected="at least g000")
    if not random2 and not random3:
        raise spec_error(
            eq1,
            eq1.span,
            "the model has no random effect",
            expected="rK in a level-2 equation or uKM in a level-3 one",
            hint="add '+ r0' to the equation for p0 and '+ u00' to that for b00",
        )
    zero = _zero_covariances(covs, (random2, random3))
    return NestedSpec(
        outcome=eq1.lhs[0],
        residual=residual,
        coefficients=(tuple(coefs1), tuple(coefs2)),
        gammas=tuple(gammas),
        random=(tuple(random2), tuple(random3)),
        zero_covariances=zero,
        source=text,
        lines={i: line for i, line in enumerate(split_lines(text), start=1)},
    )


def _zero_covariances(covs, random) -> tuple[tuple[tuple[str, str], ...], ...]:
    out: list[list[tuple[str, str]]] = [[] for _ in random]
    for eq, names in covs:
        level = 0 if names[0][1].kind == "r" else 1
        labels = [r.label for r in random[level]]
        pair = []
        for var, n in names:
            idx = _subscripts(eq, var, n, ())
            label = index_label(n.kind, idx)
            if label not in labels:
                raise spec_error(
                    eq,
                    var.span,
                    f"'{var.name}' is not a random effect of the model",
                    expected="one of " + (", ".join(labels) or "(none at this level)"),
                )
            pair.append(label)
        if pair[0] == pair[1]:
            raise spec_error(
                eq,
                eq.lhs[0].span,
                "a variance, not a covariance",
                expected="two different random effects",
            )
        pair.sort(key=labels.index)
        if tuple(pair) not in out[level]:
            out[level].append(tuple(pair))
            last = eq
    for level, pairs in enumerate(out):
        labels = [r.label for r in random[level]]
        zero = {frozenset(p) for p in pairs}
        for block in covariance_blocks(labels, tuple(pairs)):
            if any(frozenset((a, b)) in zero for a in block for b in block if a != b):
                raise spec_error(
                    last,
                    last.lhs[0].span,
                    "these cov lines leave a tau that is not block-diagonal",
                    expected="a diagonal tau or blocks whose every covariance is free",
                    hint="fix the other covariances of the block at 0 too",
                )
    return tuple(tuple(level) for level in out)
