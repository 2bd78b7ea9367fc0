"""Property tests of the equation parser.

1. Random valid equation sets, written in random notations, give the reduced form built
   independently here from the generated pieces.
2. Corrupted equation sets and arbitrary text either parse or raise the package's own
   error, whose line and span point inside the text given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mlmwrap.errors import MLMError
from mlmwrap.language.equations import parse_equations

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Names that are not coefficients (b/β/g/γ/u + digits, e/r residuals).
NAMES = st.sampled_from(
    [
        "x",
        "ses",
        "age",
        "x_ij",
        "female",
        "minority",
        "hours2",
        "Xvar",
        "w1",
        "w_j",
        "size",
        "meanses",
        "sector",
        "pracad",
        "z",
        "log_inc",
        "β",
        "gamma",
        "bx",
        "u",
        "e1",
        "rate",
    ]
)
OUTCOMES = st.sampled_from(["y", "mathach", "y_ij", "score", "Outcome_1", "γy"])
NUMBERS = st.sampled_from(
    [
        ("0.5", "0.5"),
        ("-1", "-1"),
        ("2.0", "2"),
        ("-0.25", "-0.25"),
        ("10", "10"),
        (".5", "0.5"),
        ("-3.75", "-3.75"),
    ]
)


@dataclass(frozen=True)
class Piece:
    """A predictor as written and its canonical text."""

    written: str
    canonical: str


@st.composite
def level1_predictor(draw) -> Piece:
    name = draw(NAMES)
    kind = draw(st.sampled_from(["name", "cwc", "cgm", "center", "log", "pow", "product", "C"]))
    sp = draw(st.sampled_from(["", " "]))
    if kind == "name":
        return Piece(name, name)
    if kind in ("cwc", "cgm", "log", "C"):  # C(x): a categorical level-1 predictor
        return Piece(f"{kind}({sp}{name}{sp})", f"{kind}({name})")
    if kind == "center":
        written, canonical = draw(NUMBERS)
        return Piece(f"center({name},{sp}{written})", f"center({name}, {canonical})")
    if kind == "pow":
        op = draw(st.sampled_from(["^", "**"]))
        return Piece(f"{name}{op}2", f"{name}^2")
    other = draw(NAMES.filter(lambda n: n != name))
    paren = draw(st.booleans())
    written = f"{name}*{other}"
    return Piece(f"({written})" if paren else written, f"{name}*{other}")


@st.composite
def level2_predictor(draw) -> Piece:
    name = draw(NAMES)
    kind = draw(st.sampled_from(["name", "name", "cmean", "cgm", "C"]))
    if kind == "name":
        return Piece(name, name)
    return Piece(f"{kind}({name})", f"{kind}({name})")


def beta_name(draw, k: int) -> str:
    fmt = draw(st.sampled_from(["b{}", "B{}", "b_{}", "β{}j", "β_{}j", "β{}", "beta{}", "Beta{}j"]))
    return fmt.format(k)


def gamma_name(draw, k: int, m: int) -> str:
    fmt = draw(
        st.sampled_from(["g{}{}", "G{}{}", "g_{}{}", "γ{}{}", "γ_{}{}", "gamma{}{}", "g{}_{}"])
    )
    return fmt.format(k, m)


def u_name(draw, k: int) -> str:
    return draw(st.sampled_from(["u{}", "U{}", "u{}j", "u_{}j", "u_{}"])).format(k)


def times(draw, coef: str, pred: str) -> str:
    """coef*pred in a random style: '*', ' * ', juxtaposition; either order."""
    op = draw(st.sampled_from(["*", " * ", " ", "×"]))
    return f"{coef}{op}{pred}" if draw(st.booleans()) else f"{pred}{op}{coef}"


def join_terms(draw, terms: list[str]) -> str:
    out = terms[0]
    for t in terms[1:]:
        out += draw(st.sampled_from([" + ", "+", "  +  "])) + t
    return out


def decorate(draw, equation: str) -> str:
    indent = draw(st.sampled_from(["", "    ", "\t", "  "]))
    comment = draw(st.sampled_from(["", "  # comment", "#c", " # β = γ + u"]))
    return indent + equation + comment


@st.composite
def model(draw) -> tuple[str, str]:
    """A valid equation set and its reduced form, built from the same pieces."""
    outcome = draw(OUTCOMES)
    preds = draw(
        st.lists(level1_predictor(), min_size=0, max_size=4, unique_by=lambda p: p.canonical)
    )
    has_b0 = draw(st.booleans()) if preds else True
    ks = ([0] if has_b0 else []) + list(range(1, len(preds) + 1))
    x = {k: preds[k - 1] for k in ks if k > 0}
    random = {k: draw(st.booleans()) for k in ks}
    if not any(random.values()):
        random[ks[0]] = True

    # level 2: gammas (the constant is optional when there are predictors), u if random;
    # the terms of each equation in random order
    fixed_by_k: dict[int, list[str]] = {}
    level2_lines: list[str] = []
    for k in ks:
        ws = draw(
            st.lists(level2_predictor(), min_size=0, max_size=2, unique_by=lambda p: p.canonical)
        )
        items: list[tuple[str, str | None]] = []  # (as written, canonical reduced-form term)
        if not ws or draw(st.booleans()):
            items.append(
                (gamma_name(draw, k, 0), f"g{k}0" + ("" if k == 0 else f"*{x[k].canonical}"))
            )
        for m, w in enumerate(ws, start=1):
            x_part = "" if k == 0 else f"*{x[k].canonical}"
            items.append(
                (times(draw, gamma_name(draw, k, m), w.written), f"g{k}{m}{x_part}*{w.canonical}")
            )
        if random[k]:
            items.append((u_name(draw, k), None))
        items = draw(st.permutations(items))
        fixed_by_k[k] = [canon for _, canon in items if canon is not None]
        eq = draw(st.sampled_from([" = ", "=", "  =  "]))
        level2_lines.append(beta_name(draw, k) + eq + join_terms(draw, [t for t, _ in items]))

    # level 1, terms in random order (which orders the betas), residual anywhere or omitted
    residual = draw(
        st.sampled_from([None, "e", "r", "e_ij", "r_ij", "eij", "rij", "ε", "ε_ij", "εij"])
    )
    terms: list[tuple[int | None, str]] = [
        (k, beta_name(draw, k) if k == 0 else times(draw, beta_name(draw, k), x[k].written))
        for k in ks
    ]
    if residual is not None:
        terms.append((None, residual))
    terms = draw(st.permutations(terms))
    sep = draw(st.sampled_from([" = ", "="]))
    level1_line = outcome + sep + join_terms(draw, [t for _, t in terms])

    # the reduced form, built independently
    ordered = [k for k, _ in terms if k is not None]
    fixed = [t for k in ordered for t in fixed_by_k[k]]
    rnd = [f"u{k}" + ("" if k == 0 else f"*{x[k].canonical}") for k in ordered if random[k]]
    res = {"e": "e", "r": "r", "ε": "e"}[residual[0]] if residual else "e"
    reduced = f"{outcome} = " + " + ".join([*fixed, *rnd, res])

    # the text: shuffled level-2 lines, the level-1 line anywhere, noise lines
    lines = [decorate(draw, line) for line in level2_lines]
    if len(lines) >= 2 and draw(st.booleans()):
        lines[0:2] = [lines[0].split("#")[0] + draw(st.sampled_from([";", " ; "])) + lines[1]]
    lines = draw(st.permutations(lines))
    lines.insert(draw(st.integers(0, len(lines))), decorate(draw, level1_line))
    for _ in range(draw(st.integers(0, 3))):
        noise = draw(st.sampled_from(["", "   ", "# a comment", "\t# b1 = g10"]))
        lines.insert(draw(st.integers(0, len(lines))), noise)
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return newline.join(lines), reduced


@SETTINGS
@given(model())
def test_valid_models_give_the_independent_reduced_form(case):
    text, reduced = case
    spec = parse_equations(text)
    assert spec.reduced_text() == reduced


# --------------------------------------------------------------------------------------
# Corruptions and arbitrary text: only the package's own errors, spans inside the line
# --------------------------------------------------------------------------------------

ALPHABET = "bgu0123j_()*+=^,;#-.e rβγεx\n\tcwm$~:ε"


def check_parse(text: str) -> None:
    try:
        parse_equations(text)
    except MLMError as err:
        str(err)  # formatting never fails
        if err.source is None:
            assert err.lineno is None and err.span is None
            return
        lines = re.split(r"\r\n|\r|\n", text)
        assert err.lineno is not None and 1 <= err.lineno <= len(lines)
        assert err.source == lines[err.lineno - 1]
        assert err.span is not None
        start, end = err.span
        assert 0 <= start < end <= len(err.source), (err.span, err.source)
        assert err.source[start:end].strip(), "the span covers only blanks"


@st.composite
def corrupted(draw) -> str:
    text, _ = draw(model())
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["delete", "insert", "replace", "drop", "dup", "swap"]))
        if kind in ("delete", "insert", "replace") and text:
            i = draw(st.integers(0, len(text) - 1))
            c = draw(st.sampled_from(ALPHABET))
            text = {
                "delete": text[:i] + text[i + 1 :],
                "insert": text[:i] + c + text[i:],
                "replace": text[:i] + c + text[i + 1 :],
            }[kind]
        elif kind in ("drop", "dup"):
            lines = text.split("\n")
            i = draw(st.integers(0, len(lines) - 1))
            lines[i : i + 1] = [] if kind == "drop" else [lines[i], lines[i]]
            text = "\n".join(lines)
        else:
            tokens = re.split(r"(\s+)", text)
            if len(tokens) >= 3:
                i = draw(st.integers(0, len(tokens) - 3))
                tokens[i], tokens[i + 2] = tokens[i + 2], tokens[i]
                text = "".join(tokens)
    return text


@SETTINGS
@given(corrupted())
def test_corrupted_models_raise_only_package_errors(text):
    check_parse(text)


@SETTINGS
@given(corrupted(), st.lists(st.sampled_from(["u0", "u1", "u2", "u3", "x", "0"]), max_size=4))
def test_corrupted_cov_lines_raise_only_package_errors(text, names):
    pairs = [names[i : i + 2] for i in range(0, len(names) - 1, 2)]
    check_parse(text + "".join(f"\ncov({a}, {b}) = 0" for a, b in pairs))


VOCABULARY = [
    "y",
    "=",
    "b0",
    "b1",
    "b2",
    "g00",
    "g10",
    "g01",
    "g11",
    "g20",
    "u0",
    "u1",
    "u2",
    "e",
    "+",
    "*",
    "(",
    ")",
    ",",
    "x",
    "z",
    "cwc",
    "center",
    "-",
    "1",
    "^",
    "2",
    "\n",
    ";",
    "w",
    "β1j",
    "γ10",
    " ",
    "log",
    "C",
    "#",
    "cov",
    "0",
]


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.text(alphabet=ALPHABET, max_size=60),
        st.lists(st.sampled_from(VOCABULARY), max_size=30).map(" ".join),
        st.lists(st.sampled_from(VOCABULARY), max_size=30).map("".join),
    )
)
@example("_=1")
@example("y = b0 + b1*" + "(" * 3000 + "x")
def test_arbitrary_text_raises_only_package_errors(text):
    check_parse(text)
