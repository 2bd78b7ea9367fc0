"""The package's error types.

Every problem a researcher can cause (a typo in an equation, a model that cannot be
specified, data that do not fit the model) raises a subclass of :class:`MLMError`. When
the problem sits in the equations, the error carries the line and the column span so
that ``str(error)`` shows the line with a caret under the offending token, what was
expected and a tip.

Examples
--------
>>> err = EquationSyntaxError(
...     "unknown name 'g0l'",
...     source="b0 = g00 + g0l*meanses + u0",
...     lineno=2,
...     span=(11, 14),
...     expected="a gamma such as g01",
...     hint="did you mean 'g01'?",
... )
>>> print(err)
unknown name 'g0l'
  line 2 | b0 = g00 + g0l*meanses + u0
         |            ^^^
expected: a gamma such as g01
tip: did you mean 'g01'?
"""

from __future__ import annotations

__all__ = [
    "MLMError",
    "EquationSyntaxError",
    "SpecificationError",
    "DataError",
    "ConvergenceWarning",
    "BoundaryWarning",
    "PredictionWarning",
    "ReliabilityWarning",
]


class MLMError(Exception):
    """Base class of every error mlmwrap raises on purpose.

    Parameters
    ----------
    message
        One sentence saying what is wrong.
    source
        The equation line the problem is on (without its newline), if any.
    lineno
        1-based number of that line within the equations text.
    span
        ``(start, end)`` 0-based columns of the offending token within ``source``.
    expected
        What would have been valid at that place.
    hint
        A concrete suggestion (a name to use, a line to add).
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        lineno: int | None = None,
        span: tuple[int, int] | None = None,
        expected: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.source = source
        self.lineno = lineno
        self.span = span
        self.expected = expected
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [self.message]
        if self.source is not None:
            prefix = f"  line {self.lineno} | " if self.lineno is not None else "  | "
            parts.append(prefix + self.source)
            if self.span is not None:
                start, end = self.span
                start = max(0, min(start, len(self.source)))
                end = max(start + 1, min(end, len(self.source) + 1))
                pad = " " * (len(prefix) - 2) + "| "
                # keep tabs so that the caret lines up under tab-indented lines
                lead = "".join("\t" if c == "\t" else " " for c in self.source[:start])
                parts.append(pad + lead + "^" * (end - start))
        if self.expected:
            parts.append(f"expected: {self.expected}")
        if self.hint:
            parts.append(f"tip: {self.hint}")
        return "\n".join(parts)

    def __reduce__(self):  # keep errors picklable (multiprocessing, pytest-xdist)
        return (
            _rebuild,
            (
                type(self),
                self.message,
                self.source,
                self.lineno,
                self.span,
                self.expected,
                self.hint,
            ),
        )


def _rebuild(cls, message, source, lineno, span, expected, hint):
    return cls(message, source=source, lineno=lineno, span=span, expected=expected, hint=hint)


class EquationSyntaxError(MLMError):
    """The equations text cannot be read (bad token, unbalanced parenthesis, ...)."""


class SpecificationError(MLMError):
    """The equations read fine but do not describe a valid two-level model."""


class DataError(MLMError, ValueError):
    """The data do not fit the model (a missing column, a level-2 predictor that varies, ...)."""


class ConvergenceWarning(UserWarning):
    """The optimizer did not reach a verified optimum, or the Hessian is not positive definite."""


class BoundaryWarning(UserWarning):
    """A variance component was estimated on the boundary (0) or tau is singular."""


class PredictionWarning(UserWarning):
    """Some rows got NaN, or only the fixed part, in a prediction."""


class ReliabilityWarning(UserWarning):
    """A cluster-mean predictor is an unreliable measure of the cluster's true mean."""


class DataWarning(UserWarning):
    """The data look unusual for the model (a two-valued outcome, blank-padded cluster ids)."""
