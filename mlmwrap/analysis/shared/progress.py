"""A progress bar for the operations that can take more than a few seconds.

tqdm's bar in a terminal (``tqdm.auto``: a widget in notebooks), shown only when the
operation is large (``work=True``), standard error is an interactive terminal or a notebook
runs it, and not under pytest; otherwise the iterable is returned unchanged.

Examples
--------
>>> list(progress([1, 2, 3], "demo", work=True))  # silent: not a terminal here
[1, 2, 3]
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sized
from typing import TypeVar

__all__ = ["progress", "show_progress"]

T = TypeVar("T")


def show_progress() -> bool:
    """True in a terminal or a notebook, False in tests and when output is redirected."""
    if "PYTEST_CURRENT_TEST" in os.environ or os.environ.get("MLMWRAP_NO_PROGRESS"):
        return False
    if "ipykernel" in sys.modules:
        return True
    stream = sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


def progress(items: Iterable[T], desc: str, work: bool = True) -> Iterable[T]:
    """``items`` wrapped in a progress bar when ``work`` and :func:`show_progress`."""
    if not (work and show_progress()):
        return items
    from tqdm.auto import tqdm

    total = len(items) if isinstance(items, Sized) else None
    return tqdm(items, desc=desc, total=total, leave=False)
