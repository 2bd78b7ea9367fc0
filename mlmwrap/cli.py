"""The ``mlmwrap`` command: fit equations from a file to a CSV, or run the HSB demo.

Examples
--------
$ mlmwrap demo
$ mlmwrap fit model.txt --data hsb.csv --cluster school --ml
$ mlmwrap fit model.txt --data hsb.csv --cluster school --df kenward-roger
$ mlmwrap fit model.txt --data hsb.csv --cluster school --format markdown > results.md
$ mlmwrap demo --format json

``--format``: ``text`` (default) prints the summary; ``markdown`` the equations with estimates
and APA-style tables; ``latex`` a complete LaTeX document (amsmath, booktabs) with the same;
``json`` everything needed to rebuild the tables (:func:`mlmwrap.report.export.to_json`). The exit
status is 0 for a converged fit, 1 when the fit did not converge (the output says so), 2 for
an error in the input.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from mlmwrap.api.fitting import fit
from mlmwrap.datasets import load_hsb
from mlmwrap.errors import MLMError

if TYPE_CHECKING:  # pragma: no cover
    from mlmwrap.api.results import MLMResults

__all__ = ["main", "DEMO_EQUATIONS", "FORMATS"]

#: Output formats of ``--format``.
FORMATS = ("text", "markdown", "json", "latex")

#: The workshop's intercepts- and slopes-as-outcomes model on the HSB data.
DEMO_EQUATIONS = """\
mathach = b0 + b1*cwc(ses) + e
b0 = g00 + g01*meanses + g02*sector + u0
b1 = g10 + g11*meanses + g12*sector + u1
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlmwrap",
        description="Fit multilevel models written as level-1 and level-2 equations.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_fit = sub.add_parser("fit", help="fit the equations in a text file to a CSV file")
    p_fit.add_argument("equations", help="text file with the equations ('-' reads stdin)")
    p_fit.add_argument("--data", required=True, help="CSV file, one row per level-1 unit")
    p_fit.add_argument("--cluster", required=True, help="column identifying the clusters")
    p_fit.add_argument("--ml", action="store_true", help="full maximum likelihood (default REML)")
    p_demo = sub.add_parser("demo", help="fit the workshop's model to the bundled HSB data")
    p_demo.add_argument("--ml", action="store_true", help="full maximum likelihood")
    for p in (p_fit, p_demo):
        p.add_argument(
            "--df",
            choices=("satterthwaite", "kenward-roger", "hlm", "z"),
            default="satterthwaite",
            help="how the gammas are tested (default: t-tests with Satterthwaite df)",
        )
        p.add_argument(
            "--format",
            choices=FORMATS,
            default="text",
            help="output: text summary (default), Markdown or LaTeX tables, or JSON",
        )
    return parser


def _render(res: MLMResults, fmt: str) -> str:
    """The fit in the requested output format."""
    if fmt == "text":
        return res.summary()
    from mlmwrap.report.export import to_json
    from mlmwrap.report.tables import document

    if fmt == "json":
        return to_json(res)
    return document(res, fmt)


def _read_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    return Path(path).read_text(encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mlmwrap`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            equations, data, cluster = DEMO_EQUATIONS, load_hsb(), "school"
            if args.format == "text":  # other formats show the equations themselves
                print("Equations:\n" + DEMO_EQUATIONS)
        else:
            equations = _read_text(args.equations)
            data = pd.read_csv(args.data)
            cluster = args.cluster
        with warnings.catch_warnings():
            # Warnings are part of the printed summary; do not print them twice.
            warnings.simplefilter("ignore")
            res = fit(equations, data, cluster=cluster, reml=not args.ml, df=args.df)
    except MLMError as err:
        print(f"mlmwrap: error: {err}", file=sys.stderr)
        return 2
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as err:
        print(f"mlmwrap: error: {err}", file=sys.stderr)
        return 2
    print(_render(res, args.format))
    return 0 if res.converged else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
