"""What each ``mlmwrap`` subcommand does, given the parsed flags.

Imported only once the command line has been parsed, so ``mlmwrap --help`` does not pay for
numpy, pandas or scipy.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from mlmwrap.cli.parser import DEMO_EQUATIONS
from mlmwrap.errors import DataError, MLMError

if TYPE_CHECKING:  # pragma: no cover
    from mlmwrap.api.results import MLMResults

__all__ = ["run", "flag_tips"]

# Python arguments named in the library's tips, and the flags that say the same here.
_FLAG_TIPS = (
    (re.compile(r"\brefit_ml=True\b"), "--refit-ml yes"),
    (re.compile(r"\brefit_ml=False\b"), "--refit-ml no"),
    (re.compile(r"\brefit_ml=['\"]auto['\"]"), "--refit-ml auto"),
    (re.compile(r"\breml=False\b"), "--ml"),
    (re.compile(r"\breml=True\b"), "REML (leave out --ml)"),
    (re.compile(r"\bdf=['\"]?([\w-]+)['\"]?"), r"--df \1"),
    (re.compile(r"\bcluster=(\"[^\"]*\"|'[^']*'|\.\.\.|\w+)"), "--cluster COLUMN"),
    (re.compile(r"\bsep=(\"[^\"]*\"|'[^']*')"), r"--sep \1"),
    (re.compile(r"\bna_values="), "--na-values "),
)


def flag_tips(message: str) -> str:
    """An error message with the Python arguments in its tips replaced by the flags.

    Examples
    --------
    >>> flag_tips("Kenward-Roger needs REML\\ntip: refit with reml=True, or use df='satterthwaite'")
    'Kenward-Roger needs REML\\ntip: refit with REML (leave out --ml), or use --df satterthwaite'
    """
    lines = message.splitlines()
    for i, line in enumerate(lines):
        if line.lstrip().startswith("tip:"):
            for pattern, flag in _FLAG_TIPS:
                line = pattern.sub(flag, line)
            lines[i] = line
    return "\n".join(lines)


def _read_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    return Path(path).read_text(encoding="utf-8")


def _read_csv(path: str, args: argparse.Namespace) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, sep=args.sep, na_values=args.na_values)
    except pd.errors.EmptyDataError:
        raise DataError(
            f"the data file '{path}' is empty", hint="check the path and the file"
        ) from None
    if frame.shape[1] == 1 and args.sep == ",":
        for sep in (";", "\t"):
            if sep in str(frame.columns[0]):
                raise DataError(
                    f"'{path}' was read as a single column named {str(frame.columns[0])!r}",
                    hint=f"the file seems to be separated by {sep!r}: add --sep '{sep}'",
                )
    return frame


def _clusters(args: argparse.Namespace) -> str | list[str]:
    """``--cluster school`` is one column; ``--cluster school lea`` lists levels 2 and 3."""
    given = args.cluster
    if isinstance(given, str):
        return given
    return given[0] if len(given) == 1 else list(given)


def _fit(equations: str, data: pd.DataFrame, args: argparse.Namespace) -> MLMResults:
    from mlmwrap.api.fitting import fit

    with warnings.catch_warnings():
        # Warnings are part of the printed summary; do not print them twice.
        warnings.simplefilter("ignore")
        return fit(equations, data, cluster=_clusters(args), reml=not args.ml, df=args.df)


def _write(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        Path(output).write_text(text, encoding="utf-8")
        print(f"wrote {output}", file=sys.stderr)


def _markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as a pipe table (pandas' to_markdown needs tabulate)."""
    shown = frame.reset_index()
    head = "| " + " | ".join(str(c) for c in shown.columns) + " |"
    rule = "|" + "|".join("---" for _ in shown.columns) + "|"

    def cell(v: object) -> str:
        if isinstance(v, float):
            return "" if v != v else f"{v:.{digits}f}"  # NaN: nothing to show
        return str(v)

    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in shown.itertuples(False)]
    return "\n".join([head, rule, *rows])


# -- subcommands ----------------------------------------------------------------------------
def _render_three_level(res, args: argparse.Namespace) -> str:
    if args.robust:
        raise DataError(
            "cluster-robust SEs are not available for three-level models yet",
            hint="leave out --robust",
        )
    if args.format == "text":
        return res.summary()
    if args.format == "json":
        return res.to_json()
    from mlmwrap.report.document_three_level import three_level_document

    return three_level_document(res, args.format)


def _render_fit(res: MLMResults, args: argparse.Namespace) -> str:
    from mlmwrap.api.nested_results import NestedResults

    if isinstance(res, NestedResults):
        return _render_three_level(res, args)
    p_format = "exact" if args.exact_p else "apa"
    if args.format == "text":
        return res.summary(robust=args.robust, p_format=p_format)
    if args.format == "html":  # the notebook display: MathML equations, no MathJax needed
        from mlmwrap.report.summary import summary_html

        return summary_html(res, robust=args.robust, p_format=p_format)
    if args.format == "json":
        from mlmwrap.report.export import to_json

        return to_json(res, gamma=res.robust() if args.robust else None)
    from mlmwrap.report.tables import document

    return document(res, args.format, gamma=res.robust() if args.robust else None)


def _cmd_fit(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from mlmwrap.datasets import load_hsb

        equations, data = DEMO_EQUATIONS, load_hsb()
        args.cluster = "school"
        if args.format == "text":  # other formats show the equations themselves
            print("Equations:\n" + DEMO_EQUATIONS)
    else:
        equations, data = _read_text(args.equations), _read_csv(args.data, args)
    res = _fit(equations, data, args)
    _write(_render_fit(res, args), None)
    return 0 if res.converged else 1


def _fits(args: argparse.Namespace) -> list[MLMResults]:
    data = _read_csv(args.data, args)
    return [_fit(_read_text(path), data, args) for path in args.equations]


def _names(args: argparse.Namespace) -> list[str] | None:
    if args.names is not None and len(args.names) != len(args.equations):
        raise DataError(
            f"{len(args.names)} names for {len(args.equations)} models",
            hint="give --names one name per equations file, in the same order",
        )
    return args.names


def _cmd_compare(args: argparse.Namespace) -> int:
    from mlmwrap.analysis.compare import compare

    names = _names(args)
    fits = _fits(args)
    refit = {"auto": "auto", "yes": True, "no": False}[args.refit_ml]
    cmp = compare(*fits, names=names, refit_ml=refit)
    if args.format == "text":
        _write(cmp.summary(), None)
    elif args.format == "html":
        _write(cmp._repr_html_(), None)
    else:
        _write(cmp.table.to_csv(), None)
    return 0 if all(r.converged for r in fits) else 1


def _three_level_build_up(bu, format: str) -> str:
    if format == "text":
        return str(bu)
    if format == "html":
        return bu._repr_html_()
    if format == "markdown":
        shown = bu.table.drop(columns=["loglik"])
        parts = ["## Model comparison", _markdown(shown), "## Variance", _markdown(bu.variance)]
        return "\n\n".join(parts + [f"- {n}" for n in (*bu.comparison.notes, *bu.notes)])
    raise DataError(
        f"--format {format} is not available for three-level build-ups yet",
        hint="use --format text, markdown or html",
    )


def _cmd_build_up(args: argparse.Namespace) -> int:
    from mlmwrap.api.build_up import build_up
    from mlmwrap.report.side_by_side import side_by_side

    names = _names(args)
    data = _read_csv(args.data, args)
    models = [_read_text(path) for path in args.equations]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bu = build_up(models, data, cluster=_clusters(args), names=names, reml=not args.ml)
    if isinstance(_clusters(args), list):  # three levels: the tables, no side-by-side yet
        _write(_three_level_build_up(bu, args.format), None)
        return 0 if all(r.converged for r in bu.results) else 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = [r.with_inference(args.df) for r in bu.results]
    table = side_by_side(fits, names=list(bu.table.index), format=args.format)
    if args.format == "text":
        _write(table + "\n\n" + str(bu), None)
    else:
        _write(table, None)
    return 0 if all(r.converged for r in bu.results) else 1


def _cmd_icc(args: argparse.Namespace) -> int:
    from mlmwrap.analysis.describe import icc

    table = icc(_read_csv(args.data, args), args.vars, cluster=args.cluster)
    if args.format == "csv":
        _write(table.to_csv(), None)
    elif args.format == "markdown":
        _write(_markdown(table), None)
    else:
        _write(table.round(3).to_string(), None)
    return 0


def _cmd_decompose(args: argparse.Namespace) -> int:
    from mlmwrap.model.centering import decompose

    data = _read_csv(args.data, args)
    parts = decompose(data, args.vars, cluster=args.cluster)
    out = pd.concat([data[[args.cluster]], parts], axis=1)
    _write(out.to_csv(index=False), args.output)
    return 0


def _cmd_estimates(args: argparse.Namespace) -> int:
    res = _fit(_read_text(args.equations), _read_csv(args.data, args), args)
    _write(res.cluster_coefficients().to_csv(), args.output)
    return 0 if res.converged else 1


def _cmd_residuals(args: argparse.Namespace) -> int:
    res = _fit(_read_text(args.equations), _read_csv(args.data, args), args)
    _write(res.residuals().to_csv(), args.output)
    return 0 if res.converged else 1


def _cmd_plot(args: argparse.Namespace) -> int:
    suffix = Path(args.output).suffix.lower()
    if suffix not in (".png", ".pdf", ".svg"):
        raise DataError(
            f"cannot tell the image format of '{args.output}'",
            hint="end --output with .png, .pdf or .svg",
        )
    os.environ.setdefault("MPLBACKEND", "Agg")  # no display needed to write a file
    res = _fit(_read_text(args.equations), _read_csv(args.data, args), args)
    method = args.kind.replace("-", "_")
    fig = getattr(res.plot, method)()
    fig.savefig(args.output, bbox_inches="tight")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0 if res.converged else 1


_COMMANDS = {
    "fit": _cmd_fit,
    "demo": _cmd_fit,
    "compare": _cmd_compare,
    "build-up": _cmd_build_up,
    "icc": _cmd_icc,
    "decompose": _cmd_decompose,
    "estimates": _cmd_estimates,
    "residuals": _cmd_residuals,
    "plot": _cmd_plot,
}


def run(args: argparse.Namespace) -> int:
    """Run the parsed command; errors in the input are one message and exit status 2."""
    try:
        return _COMMANDS[args.command](args)
    except BrokenPipeError:
        # The reader (e.g. `| head`) stopped early, which is not an error: point stdout at
        # devnull so that Python's flush at exit does not complain (Python docs, "SIGPIPE").
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except MLMError as err:
        print(f"mlmwrap: error: {flag_tips(str(err))}", file=sys.stderr)
    except ImportError as err:
        print(
            f"mlmwrap: error: {err}\ntip: figures need matplotlib: pip install 'mlmwrap[plots]'",
            file=sys.stderr,
        )
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        print(f"mlmwrap: error: {err}", file=sys.stderr)
    return 2
