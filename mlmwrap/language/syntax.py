"""Equations text -> tokens -> syntax tree, the first two stages of reading a model.

:func:`tokenize` splits one line into tokens that remember their columns, and
:func:`parse_tree` turns the whole text into one :class:`Equation` per equation, with
coefficient names (``b1``, ``γ01``, ``u0j``) still plain :class:`~mlmwrap.language.expr.Var` nodes;
:mod:`mlmwrap.language.equations` gives them their meaning. Problems raise
:class:`~mlmwrap.errors.EquationSyntaxError` with the line and the span.

Examples
--------
>>> [t.text for t in tokenize("y = b0 + b1*cwc(x)")]
['y', '=', 'b0', '+', 'b1', '*', 'cwc', '(', 'x', ')']
>>> eq = parse_tree("y = b0 + b1*x + e")[0]
>>> [term.text() for term in eq.rhs]
['b0', 'b1*x', 'e']
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass

from mlmwrap.errors import EquationSyntaxError
from mlmwrap.language.expr import FUNCTIONS, Call, Expr, Num, Power, Span, Var, product

__all__ = [
    "Token",
    "Equation",
    "Coefficient",
    "COV",
    "classify_name",
    "tokenize",
    "split_lines",
    "parse_tree",
]

_MAX_DEPTH = 40

#: ``cov(u0, u1) = 0``: the one call that is not a predictor function (it fixes a
#: covariance of tau; :mod:`mlmwrap.language.equations` reads it).
COV = "cov"
_COV_SIGNATURE = (2, "cov(u0, u1) = 0: the covariance of two random effects fixed at 0")

# --------------------------------------------------------------------------------------
# Names of coefficients
# --------------------------------------------------------------------------------------

_BETA = re.compile(r"(?:b|β|beta)_?([0-9]+)(?:_?j)?", re.IGNORECASE)
_GAMMA = re.compile(r"(?:g|γ|gamma)_?([0-9]+)(?:_([0-9]+))?", re.IGNORECASE)
_U = re.compile(r"u_?([0-9]+)(?:_?j)?", re.IGNORECASE)
_RESIDUAL = re.compile(r"(e|r|ε|ϵ)(?:_?(?:ij|i))?")


@dataclass(frozen=True)
class Coefficient:
    kind: str  # 'beta', 'gamma', 'u' or 'residual'
    digits: str  # K for beta/u, KM (or K) for gamma, the letter for the residual
    second: str | None = None  # M when written with a separator (g1_2)


def classify_name(name: str) -> Coefficient | None:
    """What a name means: a coefficient (beta, gamma, u, residual) or ``None`` (a variable)."""
    if m := _BETA.fullmatch(name):
        return Coefficient("beta", m.group(1))
    if m := _GAMMA.fullmatch(name):
        return Coefficient("gamma", m.group(1), m.group(2))
    if m := _U.fullmatch(name):
        return Coefficient("u", m.group(1))
    if m := _RESIDUAL.fullmatch(name):
        return Coefficient("residual", "e" if m.group(1) in "eεϵ" else "r")
    return None


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

    Coefficients are still plain :class:`~mlmwrap.language.expr.Var` names here; a term such as
    ``b1*cwc(x)`` is a :class:`~mlmwrap.language.expr.Product`.
    """

    lhs: tuple[Expr, ...]
    rhs: tuple[Expr, ...]
    lineno: int
    line: str
    span: Span  # the whole equation
    equals: Span  # the '='


def _describe(tok: Token) -> str:
    return "the end of the equation" if tok.kind == "END" else repr(tok.text)


#: Messages for a token the grammar did not expect: kind -> (message, hint).
_UNEXPECTED: dict[str, tuple[str, str | None]] = {
    "RPAREN": ("unmatched ')'", "remove it or add the matching '('"),
    "EQUALS": ("unexpected '='", "write one equation a line, with one '='"),
    "MINUS": (
        "'-' is not supported here",
        "join terms with '+' (the signs of coefficients are estimated); "
        "only a number can be negative, e.g. center(x, -1)",
    ),
    "COMMA": ("unexpected ','", "commas only separate function arguments: center(x, 10)"),
}

#: Messages for a line that ends too early, by the kind of its last token.
_AT_END: dict[str, tuple[str, str | None]] = {
    "EQUALS": ("nothing on the right of '='", "write the terms of the equation after '='"),
    "PLUS": (
        "trailing '+' with no term after it",
        "remove the '+' (an equation must fit on one line)",
    ),
}


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
            tok = self.toks[self.i - 1]
            message, hint = _AT_END.get(tok.kind, (f"the equation ends after {tok.text!r}", None))
        else:
            message, hint = _UNEXPECTED.get(tok.kind, (f"unexpected {_describe(tok)}", None))
        return self.error(tok.start, tok.end, message, expected=expected, hint=hint)

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
                if tok.text in FUNCTIONS or tok.text.lower() == COV:
                    return self.call(tok)
                if classify_name(tok.text) is None:
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
        is_cov = name.text.lower() == COV
        nargs, description = _COV_SIGNATURE if is_cov else FUNCTIONS[name.text]
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
        return Call(COV if is_cov else name.text, tuple(args), span)


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
