"""The ``mlmwrap`` command: a researcher's tool for fitting, comparing and reporting models.

Examples
--------
$ mlmwrap demo
$ mlmwrap fit model.txt --data hsb.csv --cluster school --ml --robust
$ mlmwrap fit model.txt --data survey.csv --cluster id --sep ";" --na-values . --format markdown
$ mlmwrap compare null.txt model.txt --data hsb.csv --cluster school
$ mlmwrap build-up m1.txt m2.txt m3.txt --data hsb.csv --cluster school --format latex
$ mlmwrap icc hsb.csv --cluster school --vars mathach ses
$ mlmwrap decompose hsb.csv --cluster school --vars ses --output ses_parts.csv
$ mlmwrap estimates model.txt --data hsb.csv --cluster school --output schools.csv
$ mlmwrap residuals model.txt --data hsb.csv --cluster school --output residuals.csv
$ mlmwrap plot model.txt --data hsb.csv --cluster school --kind caterpillar --output eb.png

The exit status is 0 on success, 1 when a fit did not converge (the output says so), 2 for an
error in the input. Only :mod:`argparse` is imported to parse the command line (``--help`` and
``--version`` are fast); the statistics are imported when a subcommand runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from mlmwrap.cli.parser import DEMO_EQUATIONS, FORMATS, build_parser

__all__ = ["main", "DEMO_EQUATIONS", "FORMATS"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mlmwrap`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    from mlmwrap.cli.commands import run

    try:
        code = run(args)
        sys.stdout.flush()
    except BrokenPipeError:  # piped into `head`: the reader left, which is not an error
        # Point stdout at devnull so that the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
