"""Read level-1 and level-2 equations: text -> tokens -> syntax tree -> :class:`ModelSpec`.

Each stage is a pure function that can be called on its own: :func:`tokenize` splits a
line into tokens, :func:`parse_tree` turns the text into one :class:`Equation` per
equation (coefficients are still plain names there), and :func:`parse_equations` reads
the names (``b1``, ``γ01``, ``u0j``, ``e``), checks that the equations describe a
two-level model and returns a :class:`~mlmwrap.spec.ModelSpec`. Nothing here knows about
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

import difflib
import math
import re
from dataclasses import dataclass

from mlmwrap.errors import EquationSyntaxError, SpecificationError
from mlmwrap.expr import FUNCTIONS, Call, Expr, Num, Power, Product, Span, Var, product
from mlmwrap.spec import Beta, Gamma, ModelSpec

__all__ = ["Token", "Equation", "tokenize", "split_lines", "parse_tree", "parse_equations"]

_MAX_DEPTH = 40

# --------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------

#: Single-character operators (``**`` is read as ``^``). Also accepted: the
#: multiplication signs ``×``, ``·``, ``⋅`` and the Unicode minus signs pasted from documents.
_OPERATORS = {
    "+": "PLUS",
    "-": "MINUS",
    "−": "MINUS",
    "–": "MINUS",
    "*": "STAR",
    "×": "STAR",
    "·": "STAR",
    "⋅": "STAR",
    "^": "POW",
    "(": "LPAREN",
    ")": "RPAREN",
    ",": "COMMA",
    "=": "EQUALS",
    ";": "SEMI",
}

_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

#: Hints for characters people often type from other notations.
_CHAR_HINTS = {
    "~": "equations use '=' (this is not an R formula): mathach = b0 + b1*ses + e",
    ":": "write a product with '*': b3*x*z",
    "/": "division is not supported; transform the variable in the data first",
    "|": "random effects are written as uK in the level-2 equations, e.g. b0 = g00 + u0",
    "[": "use round parentheses ( )",
    "]": "use round parentheses ( )",
    "{": "use round parentheses ( )",
    "}": "use round parentheses ( )",
    ".": "names may contain letters, digits and '_' only",
    "'": "names are written without quotes",
    '"': "names are written without quotes",
    "`": "names are written without quotes",
}


@dataclass(frozen=True)
class Token:
    """One token: ``kind`` is NAME, NUMBER, PLUS, MINUS, STAR, POW, LPAREN, RPAREN,
    COMMA, EQUALS, SEMI or END; ``start``/``end`` are 0-based columns in line ``lineno``."""

    kind: str
    text: str
    lineno: int
    start: int
    end: int

    @property
    def span(self) -> Span:
        return Span(self.lineno, self.start, self.end)


def split_lines(text: str) -> list[str]:
    r"""Split the equations text into lines (``\n``, ``\r\n`` or ``\r``); line 1 is index 0.

    Examples
    --------
    >>> split_lines("y = b0 + e\r\nb0 = g00 + u0")
    ['y = b0 + e', 'b0 = g00 + u0']
    """
    return re.split(r"\r\n|\r|\n", text)


def _syntax_error(
    line: str,
    lineno: int,
    start: int,
    end: int,
    message: str,
    expected: str | None = None,
    hint: str | None = None,
) -> EquationSyntaxError:
    return EquationSyntaxError(
        message, source=line, lineno=lineno, span=(start, end), expected=expected, hint=hint
    )


def tokenize(line: str, lineno: int = 1) -> list[Token]:
    """Split one line into tokens; a ``#`` starts a comment that runs to the end of the line.

    Examples
    --------
    >>> [t.text for t in tokenize("b1 = g10 + u1  # random slope")]
    ['b1', '=', 'g10', '+', 'u1']
    >>> [t.kind for t in tokenize("x**2")]
    ['NAME', 'POW', 'NUMBER']
    """
    tokens: list[Token] = []
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if ch == "#":
            break
        if ch.isspace():
            i += 1
        elif ch.isalpha() or ch == "_":
            j = i + 1
            while j < n and (line[j].isalnum() or line[j] == "_"):
                j += 1
            tokens.append(Token("NAME", line[i:j], lineno, i, j))
            i = j
        elif ch in "0123456789" or (ch == "." and i + 1 < n and line[i + 1] in "0123456789"):
            m = _NUMBER.match(line, i)
            assert m is not None  # the first character is a digit or '.digit'
            tokens.append(Token("NUMBER", m.group(), lineno, i, m.end()))
            i = m.end()
        elif line.startswith("**", i):
            tokens.append(Token("POW", "**", lineno, i, i + 2))
            i += 2
        elif ch in _OPERATORS:
            tokens.append(Token(_OPERATORS[ch], ch, lineno, i, i + 1))
            i += 1
        else:
            shown = ch if ch.isprintable() else repr(ch)
            raise _syntax_error(
                line,
                lineno,
                i,
                i + 1,
                f"unexpected character {shown!r}",
                expected="a name, a number, '+', '*', '^', '=', '(' or ')'",
                hint=_CHAR_HINTS.get(ch, "remove it or replace it by one of these"),
            )
    return tokens


# --------------------------------------------------------------------------------------
# Syntax tree
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Equation:
    """One equation as read: each side is a sum of terms, each term an expression.

    Coefficients are still plain :class:`~mlmwrap.expr.Var` names here; a term such as
    ``b1*cwc(x)`` is a :class:`~mlmwrap.expr.Product`.
    """

    lhs: tuple[Expr, ...]
    rhs: tuple[Expr, ...]
    lineno: int
    line: str
    span: Span  # the whole equation
    equals: Span  # the '='


def _describe(tok: Token) -> str:
    return "the end of the equation" if tok.kind == "END" else repr(tok.text)


class _Parser:
    """Recursive-descent parser for the tokens of one equation."""

    def __init__(self, tokens: list[Token], line: str, lineno: int) -> None:
        self.line = line
        self.lineno = lineno
        end = tokens[-1].end
        self.toks = [*tokens, Token("END", "", lineno, end, end)]
        self.i = 0
        self.depth = 0

    # helpers --------------------------------------------------------------------------
    def peek(self) -> Token:
        return self.toks[self.i]

    def advance(self) -> Token:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def error(
        self,
        start: int,
        end: int,
        message: str,
        expected: str | None = None,
        hint: str | None = None,
    ) -> EquationSyntaxError:
        return _syntax_error(self.line, self.lineno, start, end, message, expected, hint)

    def unexpected(self, tok: Token, expected: str) -> EquationSyntaxError:
        if tok.kind == "END":  # point at what came last
            prev = self.toks[self.i - 1]
            if prev.kind == "EQUALS":
                return self.error(
                    prev.start,
                    prev.end,
                    "nothing on the right of '='",
                    expected=expected,
                    hint="write the terms of the equation after '='",
                )
            if prev.kind == "PLUS":
                return self.error(
                    prev.start,
                    prev.end,
                    "trailing '+' with no term after it",
                    expected=expected,
                    hint="remove the '+' (an equation must fit on one line)",
                )
            return self.error(
                prev.start, prev.end, f"the equation ends after {prev.text!r}", expected=expected
            )
        if tok.kind == "RPAREN":
            return self.error(
                tok.start,
                tok.end,
                "unmatched ')'",
                expected=expected,
                hint="remove it or add the matching '('",
            )
        if tok.kind == "EQUALS":
            return self.error(
                tok.start,
                tok.end,
                "unexpected '='",
                expected=expected,
                hint="write one equation a line, with one '='",
            )
        if tok.kind == "MINUS":
            return self.error(
                tok.start,
                tok.end,
                "'-' is not supported here",
                expected=expected,
                hint="join terms with '+' (the signs of coefficients are estimated); "
                "only a number can be negative, e.g. center(x, -1)",
            )
        if tok.kind == "COMMA":
            return self.error(
                tok.start,
                tok.end,
                "unexpected ','",
                expected=expected,
                hint="commas only separate function arguments: center(x, 10)",
            )
        return self.error(tok.start, tok.end, f"unexpected {_describe(tok)}", expected=expected)

    # grammar --------------------------------------------------------------------------
    def equation(self) -> Equation:
        first = self.peek()
        if first.kind == "EQUALS":
            raise self.error(
                first.start,
                first.end,
                "nothing on the left of '='",
                expected="the outcome or a beta before '='",
                hint="e.g. 'mathach = b0 + e' or 'b0 = g00 + u0'",
            )
        lhs = self.sum()
        tok = self.peek()
        if tok.kind == "END":
            start, end = self.toks[0].start, self.toks[-1].end
            raise self.error(
                start,
                end,
                "missing '=' in the equation",
                expected="'=' between the left side and the right side",
                hint="e.g. 'mathach = b0 + b1*ses + e' or 'b1 = g10 + u1'",
            )
        if tok.kind != "EQUALS":
            raise self.unexpected(tok, "'+', '*' or '='")
        equals = self.advance()
        rhs = self.sum()
        tok = self.peek()
        if tok.kind == "EQUALS":
            raise self.error(
                tok.start,
                tok.end,
                "a second '=' in one equation",
                expected="'+', '*' or the end of the equation",
                hint="write each equation on its own line",
            )
        if tok.kind != "END":
            raise self.unexpected(tok, "'+', '*' or the end of the equation")
        span = Span(self.lineno, self.toks[0].start, self.toks[-1].end)
        return Equation(tuple(lhs), tuple(rhs), self.lineno, self.line, span, equals.span)

    def sum(self) -> list[Expr]:
        terms = [self.term()]
        while self.peek().kind == "PLUS":
            self.advance()
            terms.append(self.term())
        return terms

    def term(self) -> Expr:
        factors = [self.factor()]
        while True:
            kind = self.peek().kind
            if kind == "STAR":
                self.advance()
                factors.append(self.factor())
            elif kind in ("NAME", "NUMBER", "LPAREN"):  # juxtaposition: b1 x
                factors.append(self.factor())
            else:
                break
        result = product(factors)
        assert result is not None
        return result

    def factor(self) -> Expr:
        base = self.atom()
        if self.peek().kind == "POW":
            self.advance()
            exponent = self.number("a number as the exponent, e.g. x^2")
            base = Power(base, exponent, base.span.cover(exponent.span))
        return base

    def number(self, expected: str) -> Num:
        tok = self.peek()
        sign, start = 1.0, tok.start
        if tok.kind == "MINUS":
            self.advance()
            sign, tok = -1.0, self.peek()
        if tok.kind != "NUMBER":
            raise self.unexpected(tok, expected)
        self.advance()
        value = sign * float(tok.text)
        if not math.isfinite(value):
            raise self.error(
                start, tok.end, f"the number {tok.text} is too large", expected="a finite number"
            )
        return Num(value, Span(self.lineno, start, tok.end))

    def enter(self, tok: Token) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.error(
                tok.start,
                tok.end,
                "parentheses nested too deeply",
                expected=f"at most {_MAX_DEPTH} levels of parentheses",
            )

    def atom(self) -> Expr:
        tok = self.peek()
        if tok.kind == "NAME":
            self.advance()
            if self.peek().kind == "LPAREN":
                if tok.text in FUNCTIONS:
                    return self.call(tok)
                if _classify(tok.text) is None:
                    raise self.unknown_function(tok)
                # a coefficient before '(' is a product: b1(x*z) = b1*(x*z)
            return Var(tok.text, tok.span)
        if tok.kind == "NUMBER":
            return self.number("a number")
        if tok.kind == "LPAREN":
            opening = self.advance()
            self.enter(opening)
            inner = self.term()
            tok = self.peek()
            if tok.kind == "PLUS":
                raise self.error(
                    tok.start,
                    tok.end,
                    "a sum inside parentheses is not supported",
                    expected="')' or '*'",
                    hint="write each term with its own beta: b1*x + b2*z",
                )
            if tok.kind == "END":
                raise self.error(
                    opening.start,
                    opening.end,
                    "unclosed '('",
                    expected="a matching ')'",
                    hint="add ')'",
                )
            if tok.kind != "RPAREN":
                raise self.unexpected(tok, "')' or '*'")
            self.advance()
            self.depth -= 1
            return inner
        raise self.unexpected(tok, "a term: a name, a number or '('")

    def unknown_function(self, tok: Token) -> EquationSyntaxError:
        lower = {f.lower(): f for f in FUNCTIONS}
        close = difflib.get_close_matches(tok.text.lower(), list(lower), n=1, cutoff=0.6)
        if close:
            hint = f"did you mean '{lower[close[0]]}'?"
        else:
            hint = f"to multiply, write {tok.text}*(...)"
        return self.error(
            tok.start,
            tok.end,
            f"unknown function '{tok.text}'",
            expected="one of the functions " + ", ".join(FUNCTIONS),
            hint=hint,
        )

    def call(self, name: Token) -> Expr:
        opening = self.advance()
        self.enter(opening)
        args: list[Expr] = []
        if self.peek().kind == "RPAREN":
            close = self.advance()
        else:
            while True:
                arg = self.number("a number") if self.peek().kind == "MINUS" else self.term()
                args.append(arg)
                tok = self.peek()
                if tok.kind == "COMMA":
                    self.advance()
                    continue
                if tok.kind == "RPAREN":
                    close = self.advance()
                    break
                if tok.kind == "END":
                    raise self.error(
                        name.start,
                        opening.end,
                        f"unclosed '(' after {name.text}",
                        expected="a matching ')'",
                        hint="add ')'",
                    )
                if tok.kind == "PLUS":
                    raise self.error(
                        tok.start,
                        tok.end,
                        f"a sum inside {name.text}() is not supported",
                        expected="',' or ')'",
                    )
                raise self.unexpected(tok, "',' or ')'")
        self.depth -= 1
        span = Span(self.lineno, name.start, close.end)
        nargs, description = FUNCTIONS[name.text]
        if len(args) != nargs:
            plural = "argument" if nargs == 1 else "arguments"
            raise self.error(
                span.start,
                span.end,
                f"{name.text}() takes {nargs} {plural}, got {len(args)}",
                expected=description,
            )
        if name.text == "center" and not isinstance(args[1], Num):
            s = args[1].span
            raise self.error(
                s.start,
                s.end,
                "the reference value of center() must be a number",
                expected="center(x, value) with a number, e.g. center(ses, -0.5)",
                hint="to center at a cluster or grand mean use cwc(x) or cgm(x)",
            )
        return Call(name.text, tuple(args), span)


def parse_tree(text: str) -> tuple[Equation, ...]:
    """Read the equations into syntax trees, one :class:`Equation` per equation.

    Blank lines, ``#`` comments and leading indentation are ignored; ``;`` separates two
    equations on one line.

    Examples
    --------
    >>> eq, = parse_tree("y_ij = β0j + β1j x_ij + r_ij")
    >>> [t.text() for t in eq.rhs]
    ['β0j', 'β1j*x_ij', 'r_ij']
    """
    equations: list[Equation] = []
    for lineno, line in enumerate(split_lines(text), start=1):
        segment: list[Token] = []
        for tok in [*tokenize(line, lineno), None]:
            if tok is None or tok.kind == "SEMI":
                if segment:
                    equations.append(_Parser(segment, line, lineno).equation())
                segment = []
            else:
                segment.append(tok)
    return tuple(equations)


# --------------------------------------------------------------------------------------
# Names of coefficients
# --------------------------------------------------------------------------------------

_BETA = re.compile(r"(?:b|β|beta)_?([0-9]+)(?:_?j)?", re.IGNORECASE)
_GAMMA = re.compile(r"(?:g|γ|gamma)_?([0-9]+)(?:_([0-9]+))?", re.IGNORECASE)
_U = re.compile(r"u_?([0-9]+)(?:_?j)?", re.IGNORECASE)
_RESIDUAL = re.compile(r"(e|r|ε|ϵ)(?:_?(?:ij|i))?")


@dataclass(frozen=True)
class _Coef:
    kind: str  # 'beta', 'gamma', 'u' or 'residual'
    digits: str  # K for beta/u, KM (or K) for gamma, the letter for the residual
    second: str | None = None  # M when written with a separator (g1_2)


def _classify(name: str) -> _Coef | None:
    """What a name means: a coefficient (beta, gamma, u, residual) or ``None`` (a variable)."""
    if m := _BETA.fullmatch(name):
        return _Coef("beta", m.group(1))
    if m := _GAMMA.fullmatch(name):
        return _Coef("gamma", m.group(1), m.group(2))
    if m := _U.fullmatch(name):
        return _Coef("u", m.group(1))
    if m := _RESIDUAL.fullmatch(name):
        return _Coef("residual", "e" if m.group(1) in "eεϵ" else "r")
    return None


def _gamma_label(k: int, m: int) -> str:
    return f"g{k}{m}" if k < 10 and m < 10 else f"g{k}_{m}"


# --------------------------------------------------------------------------------------
# Syntax tree -> ModelSpec
# --------------------------------------------------------------------------------------


def _spec_error(
    eq: Equation, span: Span, message: str, expected: str | None = None, hint: str | None = None
) -> SpecificationError:
    return SpecificationError(
        message,
        source=eq.line,
        lineno=eq.lineno,
        span=(span.start, span.end),
        expected=expected,
        hint=hint,
    )


def _factors(term: Expr) -> tuple[Expr, ...]:
    return term.factors if isinstance(term, Product) else (term,)


@dataclass
class _Term:
    """A term split into its coefficients and its predictor factors."""

    expr: Expr
    coefs: list[tuple[Var, _Coef]]
    predictor: Expr | None


def _split_term(eq: Equation, term: Expr) -> _Term:
    coefs: list[tuple[Var, _Coef]] = []
    preds: list[Expr] = []
    for f in _factors(term):
        if isinstance(f, Var) and (c := _classify(f.name)) is not None:
            coefs.append((f, c))
        elif isinstance(f, Num):
            if f.value != 1:
                raise _spec_error(
                    eq,
                    f.span,
                    f"the number {f.text()} cannot multiply a term",
                    expected="a coefficient times predictors, e.g. b1*x",
                    hint="coefficients are estimated, not written",
                )
        else:
            _check_predictor(eq, f)
            preds.append(f)
    if not coefs and not preds:
        raise _spec_error(
            eq,
            term.span,
            f"the number '{term.text()}' alone is not a term",
            expected="a coefficient, e.g. b0, b1*x, g00 or g01*w",
            hint="the intercept is written b0 in level 1 (b0 = g00 + u0 in level 2)",
        )
    return _Term(term, coefs, product(preds))


def _check_predictor(eq: Equation, e: Expr) -> None:
    for v in e.variables():
        c = _classify(v.name)
        if c is not None:
            raise _spec_error(
                eq,
                v.span,
                f"'{v.name}' is a coefficient and cannot stand inside '{e.text()}'",
                expected="a variable name",
                hint="a coefficient multiplies a predictor from outside, e.g. b1*cwc(x)",
            )
    if not e.variables():
        raise _spec_error(
            eq,
            e.span,
            f"'{e.text()}' is a constant, not a predictor",
            expected="a predictor with a variable in it, e.g. log(x)",
        )


def _lhs_beta(eq: Equation) -> tuple[Var, int] | None:
    """The beta on the left of a level-2 equation, or None for a level-1 equation."""
    if len(eq.lhs) != 1:
        span = eq.lhs[0].span.cover(eq.lhs[-1].span)
        raise _spec_error(
            eq,
            span,
            "the left side of an equation must be a single name",
            expected="the outcome (level 1) or a beta (level 2) before '='",
            hint="e.g. 'mathach = b0 + e' or 'b0 = g00 + u0'",
        )
    lhs = eq.lhs[0]
    factors = _factors(lhs)
    coefs = [(f, c) for f in factors if isinstance(f, Var) and (c := _classify(f.name))]
    if coefs:
        var, c = coefs[0]
        if c.kind != "beta":
            what = {"gamma": "a gamma", "u": "a random effect", "residual": "the residual"}
            raise _spec_error(
                eq,
                var.span,
                f"{what[c.kind]} '{var.name}' cannot be on the left of '='",
                expected="the outcome (level 1) or a beta such as b1 (level 2)",
                hint="level-2 equations read 'b1 = g10 + g11*w + u1'",
            )
        if len(factors) > 1:
            raise _spec_error(
                eq,
                lhs.span,
                f"'{lhs.text()}' on the left of '='",
                expected=f"the beta alone: {var.name} = ...",
            )
        return var, int(c.digits)
    if isinstance(lhs, (Product, Num)):
        raise _spec_error(
            eq,
            lhs.span,
            f"'{lhs.text()}' cannot be the outcome",
            expected="a single variable (or a transform such as log(y))",
        )
    _check_predictor(eq, lhs)
    # a level-2 equation with a mistyped beta reads like a second outcome: say so
    rhs = [
        c for t in eq.rhs for f in _factors(t) if isinstance(f, Var) and (c := _classify(f.name))
    ]
    gammas = [c for c in rhs if c.kind == "gamma"]
    betas = [c for c in rhs if c.kind in ("beta", "residual")]
    if gammas and not betas:
        k = gammas[0].digits[:-1] or gammas[0].digits
        raise _spec_error(
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
                raise _spec_error(
                    eq,
                    var.span,
                    f"random effect '{var.name}' in the level-1 equation",
                    expected="betas (b0, b1*x, ...) and the residual e",
                    hint=f"random effects belong in level-2 equations: b{int(c.digits)} = "
                    f"{_gamma_label(int(c.digits), 0)} + u{int(c.digits)}",
                )
            if c.kind == "gamma":
                what = f"'{var.name}' times a predictor" if t.predictor else f"'{var.name}'"
                raise _spec_error(
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
            raise _spec_error(
                eq,
                term.span,
                f"the term '{term.text()}' has no beta",
                expected="a beta times the predictor",
                hint=hint,
            )
        if len(t.coefs) > 1:
            var = t.coefs[1][0]
            raise _spec_error(
                eq,
                var.span,
                f"two coefficients multiplied: '{t.coefs[0][0].name}' and '{var.name}'",
                expected="one beta a term",
            )
        var, c = t.coefs[0]
        if c.kind == "residual":
            if t.predictor is not None:
                raise _spec_error(
                    eq,
                    term.span,
                    f"the residual '{var.name}' cannot multiply a predictor",
                    expected=f"'{var.name}' alone",
                )
            if residual_seen:
                raise _spec_error(
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
                raise _spec_error(
                    eq,
                    var.span,
                    f"b{k} appears twice in the level-1 equation (first as '{seen.name}')",
                    expected="a new beta number",
                    hint="number each level-1 coefficient once: b0, b1, b2, ...",
                )
        if k == 0 and t.predictor is not None:
            raise _spec_error(
                eq,
                term.span,
                f"b0 is the intercept; '{term.text()}' gives it a predictor",
                expected="b0 alone",
                hint=f"number the slopes from 1: b1*{t.predictor.text()}",
            )
        if k != 0 and t.predictor is None:
            raise _spec_error(
                eq,
                var.span,
                f"'{var.name}' has no predictor",
                expected=f"{var.name} times a predictor, e.g. {var.name}*x",
                hint="only b0, the intercept, stands alone",
            )
        if t.predictor is not None:
            if t.predictor in predictors:
                raise _spec_error(
                    eq,
                    t.predictor.span,
                    f"the predictor '{t.predictor.text()}' appears twice",
                    expected="each level-1 predictor once",
                )
            predictors[t.predictor] = t.predictor
        betas.append((var, k, t.predictor))
    if not betas:
        span = eq.rhs[0].span.cover(eq.rhs[-1].span)
        raise _spec_error(
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


def _gamma_km(eq: Equation, var: Var, c: _Coef, k: int, suggest_m: int) -> tuple[int, int]:
    ks = str(k)
    if c.second is not None:
        gk, gm = int(c.digits), int(c.second)
    elif len(c.digits) > len(ks) and c.digits.startswith(ks):
        gk, gm = k, int(c.digits[len(ks) :])
    else:
        gk, gm = -1, -1
    if gk != k:
        raise _spec_error(
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
    for term in eq.rhs:
        t = _split_term(eq, term)
        for var, c in t.coefs:
            if c.kind == "beta":
                raise _spec_error(
                    eq,
                    var.span,
                    f"beta '{var.name}' on the right side of a level-2 equation",
                    expected=f"gammas (with their predictors) and the random effect u{k}",
                    hint=f"a level-2 equation predicts one beta: b{k} = "
                    f"{_gamma_label(k, 0)} + {_gamma_label(k, 1)}*w + u{k}",
                )
            if c.kind == "residual":
                raise _spec_error(
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
            raise _spec_error(
                eq,
                term.span,
                f"the term '{term.text()}' has no gamma",
                expected="a gamma times the predictor",
                hint=f"write {_gamma_label(k, nxt)}*{t.predictor.text()}",
            )
        if len(t.coefs) > 1:
            var = t.coefs[1][0]
            raise _spec_error(
                eq,
                var.span,
                f"two coefficients multiplied: '{t.coefs[0][0].name}' and '{var.name}'",
                expected="one gamma a term",
            )
        var, c = t.coefs[0]
        if c.kind == "u":
            if int(c.digits) != k:
                raise _spec_error(
                    eq,
                    var.span,
                    f"'{var.name}' in the equation for b{k}",
                    expected=f"u{k}, the random effect of b{k}",
                    hint=f"write u{k}",
                )
            if t.predictor is not None:
                raise _spec_error(
                    eq,
                    term.span,
                    f"the random effect '{var.name}' cannot multiply a predictor",
                    expected=f"u{k} alone",
                    hint=f"a random effect of {t.predictor.text()} needs its own beta in level 1",
                )
            if u is not None:
                raise _spec_error(eq, var.span, f"u{k} appears twice", expected=f"u{k} once")
            u = var
            continue
        m_suggest = 0 if t.predictor is None else max([0, *seen]) + 1
        _, m = _gamma_km(eq, var, c, k, m_suggest)
        label = _gamma_label(k, m)
        if m in seen:
            raise _spec_error(
                eq,
                var.span,
                f"{label} appears twice (first as '{seen[m].name}')",
                expected="each gamma once",
                hint=f"number the predictors' gammas {_gamma_label(k, 1)}, "
                f"{_gamma_label(k, 2)}, ...",
            )
        if m == 0 and t.predictor is not None:
            raise _spec_error(
                eq,
                var.span,
                f"{label} is the constant of b{k} but multiplies '{t.predictor.text()}'",
                expected=f"{label} alone",
                hint=f"give the predictor its own number: "
                f"{_gamma_label(k, m_suggest)}*{t.predictor.text()}",
            )
        if m != 0 and t.predictor is None:
            raise _spec_error(
                eq,
                var.span,
                f"{label} has no predictor",
                expected=f"{label} times a level-2 predictor",
                hint=f"the constant of b{k} is {_gamma_label(k, 0)}",
            )
        if t.predictor is not None:
            if t.predictor in predictors:
                raise _spec_error(
                    eq,
                    t.predictor.span,
                    f"the predictor '{t.predictor.text()}' appears twice",
                    expected="each level-2 predictor once in an equation",
                )
            predictors.add(t.predictor)
        seen[m] = var
        gammas.append(Gamma(label, k, m, t.predictor, var.span))
    if not gammas:
        span = eq.rhs[0].span.cover(eq.rhs[-1].span)
        raise _spec_error(
            eq,
            span,
            f"the equation for b{k} has no gamma",
            expected=f"at least the constant {_gamma_label(k, 0)}",
            hint=f"write b{k} = {_gamma_label(k, 0)}" + (f" + u{k}" if u is not None else ""),
        )
    return _Level2(eq, beta_var, k, gammas, u)


def parse_equations(text: str) -> ModelSpec:
    """Read a two-level model written as equations.

    Parameters
    ----------
    text
        One equation a line: the level-1 equation ``OUTCOME = b0 + b1*X1 + ... + e`` and
        one level-2 equation ``bK = gK0 + gK1*W1 + ... + uK`` for each beta (``uK`` makes
        the beta random). Blank lines and ``#`` comments are ignored. Greek letters and
        cluster subscripts (``β1j``, ``γ01``, ``u0j``, ``r_ij``), words (``beta1``,
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
    for eq in equations:
        lhs = _lhs_beta(eq)
        if lhs is None:
            if level1 is not None:
                raise _spec_error(
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
                raise _spec_error(
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
        raise _spec_error(
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
            raise _spec_error(
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
            raise _spec_error(
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
        raise _spec_error(
            eq,
            eq.span,
            "the model has no random effect",
            expected=f"a random effect uK in a level-2 equation, e.g. u{k}",
            hint=f"add '+ u{k}' to the b{k} equation; without a random effect "
            "the model is an ordinary regression",
        )
    lines = {i: line for i, line in enumerate(split_lines(text), start=1)}
    return ModelSpec(
        outcome=level1.outcome,
        betas=tuple(betas),
        residual=level1.residual,
        source=text,
        lines=lines,
    )
