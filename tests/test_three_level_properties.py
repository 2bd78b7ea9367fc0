"""Property tests: generated three-level equation sets parse to the right reduced form, and
generated corruptions raise mlmwrap's own errors (never a crash from inside)."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlmwrap.errors import MLMError
from mlmwrap.language.levels import parse_model


@st.composite
def models(draw):
    """Equations and the reduced form they must give: fixed terms (label -> factors) and the
    random effects of each level (label -> factors)."""
    n1 = draw(st.integers(0, 2))
    lines = ["y = " + " + ".join(["p0", *(f"p{k}*x{k}" for k in range(1, n1 + 1)), "e"])]
    level3 = []
    fixed, r2, r3 = {}, {}, {}
    for k in range(n1 + 1):
        xk = () if k == 0 else (f"x{k}",)
        n2 = draw(st.integers(0, 2))
        rand2 = draw(st.booleans())
        terms = [f"b{k}0"] + [f"b{k}{m}*w{m}" for m in range(1, n2 + 1)]
        lines.append(f"p{k} = " + " + ".join(terms + ([f"r{k}"] if rand2 else [])))
        if rand2:
            r2[f"r{k}"] = xk
        for m in range(n2 + 1):
            wm = () if m == 0 else (f"w{m}",)
            n3 = draw(st.integers(0, 1))
            rand3 = draw(st.booleans())
            gterms = [f"g{k}{m}0"] + [f"g{k}{m}{s}*z{s}" for s in range(1, n3 + 1)]
            level3.append(f"b{k}{m} = " + " + ".join(gterms + ([f"u{k}{m}"] if rand3 else [])))
            if rand3:
                r3[f"u{k}{m}"] = xk + wm
            for s in range(n3 + 1):
                fixed[f"g{k}{m}{s}"] = xk + wm + (() if s == 0 else (f"z{s}",))
    if not r2 and not r3:
        lines[1] += " + r0"
        r2["r0"] = ()
    order = draw(st.permutations(level3))
    return "\n".join(lines + list(order)), fixed, r2, r3


def _factors(expr):
    return () if expr is None else tuple(v.name for v in expr.variables())


@settings(max_examples=60, deadline=None)
@given(models())
def test_reduced_form(model):
    text, fixed, r2, r3 = model
    spec = parse_model(text)
    assert spec.n_levels == 3
    assert {g.label: _factors(g.expr) for g in spec.gammas} == fixed
    assert {r.label: _factors(r.expr) for r in spec.random[0]} == r2
    assert {r.label: _factors(r.expr) for r in spec.random[1]} == r3
    reduced = spec.reduced_text()
    assert all(label in reduced for label in fixed)


_CORRUPTIONS = [
    lambda t: re.sub(r"\bg(\d)(\d)0\b", r"g\2\g<1>9", t, count=1),  # wrong subscripts
    lambda t: re.sub(r"\+ r(\d)", r"+ u\g<1>0", t, count=1),  # u at level 2
    lambda t: re.sub(r"\+ u(\d)(\d)", r"+ r\1", t, count=1),  # r at level 3
    lambda t: "\n".join(line for line in t.splitlines() if not line.startswith("b00")),
    lambda t: t.replace("p0 =", "p7 =", 1),  # equation for a p not in level 1
    lambda t: t.replace("y = p0", "y = b0", 1),  # b at level 1
    lambda t: t.replace("b00 = g000", "b00 = g000 + e", 1),  # residual at level 3
    lambda t: t + "\ncov(r0, u00) = 0",
    lambda t: t.replace("+ e", "+ e + e", 1),
    lambda t: t.replace("p0 = b00", "p0 = b00*", 1),  # syntax
]


@settings(max_examples=80, deadline=None)
@given(models(), st.sampled_from(range(len(_CORRUPTIONS))))
def test_corruptions_raise_mlm_errors(model, which):
    text = model[0]
    bad = _CORRUPTIONS[which](text)
    if bad == text:
        return
    with pytest.raises(MLMError) as info:
        parse_model(bad)
    assert info.value.message and info.value.lineno is not None
