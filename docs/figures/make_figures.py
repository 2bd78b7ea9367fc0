"""Make the figures in docs/figures/ from the bundled HSB data.

Run from the repository root:  python docs/figures/make_figures.py
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository's mlmwrap
import matplotlib.pyplot as plt  # noqa: E402

import mlmwrap  # noqa: E402
from mlmwrap import plots  # noqa: E402

OUT = Path(__file__).parent


def main() -> None:
    hsb = mlmwrap.datasets.load_hsb()

    # Raudenbush & Bryk's random-coefficient model (Table 4.4).
    rc = mlmwrap.fit(
        """
        mathach = b0 + b1*cwc(ses) + e
        b0 = g00 + u0
        b1 = g10 + u1
        """,
        hsb,
        cluster="school",
    )
    # Within and between effects of SES (the decomposed predictor).
    wb = mlmwrap.fit(
        """
        mathach = b0 + b1*cwc(ses) + e
        b0 = g00 + g01*cmean(ses) + u0
        b1 = g10 + u1
        """,
        hsb,
        cluster="school",
    )

    figures = {
        "caterpillar.png": plots.caterpillar(rc),
        "spaghetti.png": plots.spaghetti(rc, "cwc(ses)", color_by="sector"),
        "residuals.png": plots.residuals(rc),
        "random_effects_qq.png": plots.random_effects_qq(rc),
        "within_between.png": plots.within_between(wb, "ses"),
    }
    for name, fig in figures.items():
        fig.savefig(OUT / name, dpi=110, bbox_inches="tight")
        plt.close(fig)
        print("wrote", OUT / name)


if __name__ == "__main__":
    main()
