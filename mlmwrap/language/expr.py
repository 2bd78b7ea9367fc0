"""Predictor expressions: the syntax tree of what stands where a variable may stand.

An expression is built from variables (:class:`Var`), numbers (:class:`Num`), function
calls (:class:`Call`: centering functions, transforms, the categorical marker ``C``),
products (:class:`Product`) and powers (:class:`Power`). Every node is a frozen dataclass
that remembers where it was written (:class:`Span`); the span takes no part in equality,
so two expressions are equal when they have the same structure.

Examples
--------
>>> e = Product((Call("cwc", (Var("ses"),)), Var("meanses")))
>>> e.text()
'cwc(ses)*meanses'
>>> [v.name for v in e.variables()]
['ses', 'meanses']
>>> Power(Var("x"), Num(2.0)).text()
'x^2'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = [
    "Span",
    "NO_SPAN",
    "Expr",
    "Var",
    "Num",
    "Call",
    "Product",
    "Power",
    "FUNCTIONS",
    "product",
]


@dataclass(frozen=True)
class Span:
    """Where a piece of text sits in the equations.

    Parameters
    ----------
    lineno
        1-based line number within the equations text.
    start, end
        0-based columns ``[start, end)`` within that line.
    """

    lineno: int
    start: int
    end: int

    def cover(self, other: Span) -> Span:
        """The span from the start of ``self`` to the end of ``other`` (same line)."""
        return Span(self.lineno, min(self.start, other.start), max(self.end, other.end))


#: Placeholder span for expressions built in code rather than parsed.
NO_SPAN = Span(0, 0, 0)


#: Known functions: name -> (number of arguments, description for error messages).
FUNCTIONS: dict[str, tuple[int, str]] = {
    "cwc": (1, "cwc(x): x centered within clusters (x minus its cluster mean)"),
    "cgm": (1, "cgm(x): x centered at its grand mean"),
    "cmean": (1, "cmean(x): the cluster mean of x"),
    "center": (2, "center(x, value): x minus a reference value"),
    "log": (1, "log(x): natural logarithm"),
    "log10": (1, "log10(x): base-10 logarithm"),
    "exp": (1, "exp(x): exponential"),
    "sqrt": (1, "sqrt(x): square root"),
    "abs": (1, "abs(x): absolute value"),
    "C": (1, "C(x): treat x as categorical"),
}


class Expr:
    """Base class of predictor expressions.

    Every node has a ``span`` (:class:`Span`, ignored by ``==``), a canonical
    :meth:`text` and the tuple of its variables (:meth:`variables`).
    """

    span: Span

    def text(self) -> str:
        """Canonical text of the expression, e.g. ``'cwc(ses)'`` or ``'x^2'``."""
        raise NotImplementedError

    def variables(self) -> tuple[Var, ...]:
        """All :class:`Var` leaves, in the order they are written."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self.text()


@dataclass(frozen=True)
class Var(Expr):
    """A variable, named as written (subscripts such as ``_ij`` are kept).

    Examples
    --------
    >>> Var("x_ij").text()
    'x_ij'
    """

    name: str
    span: Span = field(default=NO_SPAN, compare=False, repr=False)

    def text(self) -> str:
        return self.name

    def variables(self) -> tuple[Var, ...]:
        return (self,)


def format_number(value: float) -> str:
    """Canonical text of a number: ``2.0 -> '2'``, ``-0.5 -> '-0.5'``.

    Examples
    --------
    >>> format_number(2.0), format_number(-0.25), format_number(1e20)
    ('2', '-0.25', '1e+20')
    """
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


@dataclass(frozen=True)
class Num(Expr):
    """A number (the value of ``center(x, value)`` or an exponent).

    Examples
    --------
    >>> Num(-1.5).text()
    '-1.5'
    """

    value: float
    span: Span = field(default=NO_SPAN, compare=False, repr=False)

    def text(self) -> str:
        return format_number(self.value)

    def variables(self) -> tuple[Var, ...]:
        return ()


@dataclass(frozen=True)
class Call(Expr):
    """A function applied to arguments: ``cwc(x)``, ``center(x, 10)``, ``log(x)``, ``C(x)``.

    Examples
    --------
    >>> Call("center", (Var("ses"), Num(0.5))).text()
    'center(ses, 0.5)'
    """

    func: str
    args: tuple[Expr, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)

    def text(self) -> str:
        return f"{self.func}({', '.join(a.text() for a in self.args)})"

    def variables(self) -> tuple[Var, ...]:
        return tuple(v for a in self.args for v in a.variables())


@dataclass(frozen=True)
class Product(Expr):
    """A product of two or more predictors (``x*z``); nested products are flattened.

    Examples
    --------
    >>> Product((Var("x"), Var("z"))).text()
    'x*z'
    """

    factors: tuple[Expr, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)

    def text(self) -> str:
        return "*".join(f.text() for f in self.factors)

    def variables(self) -> tuple[Var, ...]:
        return tuple(v for f in self.factors for v in f.variables())


@dataclass(frozen=True)
class Power(Expr):
    """A predictor raised to a number: ``x^2`` (also written ``x**2``).

    Examples
    --------
    >>> Power(Product((Var("x"), Var("z"))), Num(2.0)).text()
    '(x*z)^2'
    """

    base: Expr
    exponent: Num
    span: Span = field(default=NO_SPAN, compare=False, repr=False)

    def text(self) -> str:
        base = self.base.text()
        if isinstance(self.base, (Product, Power)) or (
            isinstance(self.base, Num) and self.base.value < 0
        ):
            base = f"({base})"
        return f"{base}^{self.exponent.text()}"

    def variables(self) -> tuple[Var, ...]:
        return self.base.variables()


def product(factors: list[Expr] | tuple[Expr, ...], span: Span | None = None) -> Expr | None:
    """Multiply expressions, flattening nested products.

    Returns ``None`` for no factors and the factor itself for one.

    Examples
    --------
    >>> product([Var("x"), Product((Var("z"), Var("w")))]).text()
    'x*z*w'
    >>> product([Var("x")])
    Var(name='x')
    >>> product([]) is None
    True
    """
    flat: list[Expr] = []
    for f in factors:
        if isinstance(f, Product):
            flat.extend(f.factors)
        else:
            flat.append(f)
    if not flat:
        return None
    if len(flat) == 1:
        return flat[0]
    if span is None:
        span = flat[0].span.cover(flat[-1].span)
    return Product(tuple(flat), span)
