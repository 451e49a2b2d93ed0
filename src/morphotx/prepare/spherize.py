"""pycytominer's ``Spherize.fit`` without its n × n matrix.

``Spherize.fit`` takes ``np.linalg.svd(X, full_matrices=True)`` of the centred DMSO wells and
keeps only the singular values and ``Vt``; with n wells that call also forms ``U``, an n × n
matrix: 5.5 GB and most of ten minutes for CDRP's ~26,000 DMSO wells (``make bench-cdrp-scale``).
When there are more wells than features (n > d) the thin SVD (``full_matrices=False``) returns
the same singular values and the same d × d ``Vt`` (LAPACK computes them alike; equal bit for bit
here, checked in ``tests/test_preprocess_stream.py``) and a ``U`` of n × d only. :func:`fit`
runs pycytominer's own ``fit`` with its module's ``np.linalg.svd`` answering that thin call for
n > d (for n ≤ d the call is pycytominer's, unchanged), with one BLAS thread (OpenBLAS's
multi-threaded LAPACK is several times slower on it: 1,168 × 1,168 on 2 cores, 3.8 s vs 0.9 s).
"""

from __future__ import annotations

from unittest import mock

import numpy as np
from pycytominer.operations import transform as _transform
from threadpoolctl import threadpool_limits


def _svd(a, full_matrices=True, *args, **kwargs):
    a = np.asarray(a)
    if full_matrices and a.ndim == 2 and a.shape[0] > a.shape[1]:
        full_matrices = False  # Spherize discards U; S and Vt are the same
    return np.linalg.svd(a, full_matrices, *args, **kwargs)


class _Namespace:
    """``target`` with some attributes replaced (the rest read through)."""

    def __init__(self, target, **replaced):
        self._target, self._replaced = target, replaced

    def __getattr__(self, name):
        return self._replaced[name] if name in self._replaced else getattr(self._target, name)


_NUMPY = _Namespace(np, linalg=_Namespace(np.linalg, svd=_svd))


def fit(estimator, X):
    """``estimator.fit(X)`` with one BLAS thread; a pycytominer ``Spherize`` fits with the thin
    SVD when ``X`` has more rows than columns (module docstring).

    Parameters
    ----------
    estimator : object
        A pycytominer ``Spherize`` (or any estimator with ``fit``).
    X : pandas.DataFrame
        The rows it is fitted on (DMSO wells).

    Returns
    -------
    object
        The fitted estimator.
    """
    with threadpool_limits(limits=1, user_api="blas"), mock.patch.object(_transform, "np", _NUMPY):
        return estimator.fit(X)
