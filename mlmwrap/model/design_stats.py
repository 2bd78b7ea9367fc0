"""The per-cluster cross-products of a :class:`~mlmwrap.model.design.Design`, block by block.

``W = [X, Z, y]`` is evaluated from the model frame in blocks of cluster-sorted rows
(:meth:`~mlmwrap.model.design.Design.row_blocks`) and each block is added to the running
sums (:class:`~mlmwrap.model.cross_products.CrossProductSums`), so a fit never holds the
``n x k`` design: memory beyond the model frame is one block and the ``J x k x k`` table.
The sums are those of :meth:`~mlmwrap.model.engine.ClusterStats.from_arrays` on the full
arrays, to the last bit.

Examples
--------
>>> import mlmwrap
>>> from mlmwrap.language.equations import parse_equations
>>> from mlmwrap.model.design import build_design
>>> from mlmwrap.model.engine import ClusterStats
>>> spec = parse_equations("mathach = b0 + b1*cwc(ses) + e\\nb0 = g00 + u0\\nb1 = g10 + u1")
>>> d = build_design(spec, mlmwrap.datasets.load_hsb(), cluster="school")
>>> stats = design_cluster_stats(d)
>>> full = ClusterStats.from_arrays(d.X, d.Z, d.y, d.codes)
>>> bool((stats.cross == full.cross).all()), stats.cross.shape
(True, (160, 5, 5))
"""

from __future__ import annotations

import numpy as np

from mlmwrap.model.cross_products import CrossProductSums
from mlmwrap.model.design import Design, infinite_predictor_error
from mlmwrap.model.engine import ClusterStats

__all__ = ["design_cluster_stats"]


def design_cluster_stats(design: Design, free: np.ndarray | None = None) -> ClusterStats:
    """:class:`ClusterStats` of ``design`` (``free``: the pattern of ``L``, as in
    :meth:`ClusterStats.from_arrays`), summed over blocks of rows.

    Raises
    ------
    DataError
        A predictor's value in the design is infinite (an overflowed product).
    """
    p, q = design.matrices.p, design.matrices.q
    sums = CrossProductSums(p + q + 1, design.n_clusters)
    for W, codes in design.row_blocks():
        if not np.all(np.isfinite(W)):
            raise infinite_predictor_error()
        sums.add(W, codes)
    return ClusterStats(
        cross=sums.result(),
        n_obs=design.n_obs,
        p=p,
        q=q,
        cluster_sizes=design.cluster_sizes,
        free=free,
    )
