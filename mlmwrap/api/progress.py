"""A progress bar over the stages of a fit, shown only when someone is watching.

``progress=None`` (the default) shows it in a terminal, and only once a fit has run for
two seconds (tqdm's ``delay``), so quick fits, scripts whose output is piped, stored
notebook outputs and the tests stay silent; ``True`` forces it (in a notebook too),
``False`` silences it. Without tqdm there is no bar.

Examples
--------
>>> with Progress(False, total=2) as bar:
...     bar.step("cross-products")
...     bar.step("optimizing")
"""

from __future__ import annotations

import sys

__all__ = ["Progress"]


def _watched() -> bool:
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


class Progress:
    """Context manager: ``step(description)`` as each stage starts."""

    def __init__(self, enabled: bool | None, total: int, delay: float = 2.0) -> None:
        self._bar = None
        if enabled is False or (enabled is None and not _watched()):
            return
        try:
            if enabled:  # asked for: a widget in notebooks, text elsewhere
                from tqdm.auto import tqdm
            else:
                from tqdm import tqdm
        except ImportError:  # pragma: no cover - tqdm is optional
            return
        self._bar = tqdm(total=total, desc="mlmwrap", delay=0.0 if enabled else delay, leave=False)
        self._started = False

    def step(self, description: str) -> None:
        if self._bar is None:
            return
        if self._started:
            self._bar.update(1)
        self._started = True
        self._bar.set_description(f"mlmwrap: {description}")

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.update(self._bar.total - self._bar.n)
            self._bar.close()
