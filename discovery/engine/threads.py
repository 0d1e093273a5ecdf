"""Thread limits for a process that relaxes or trains: torch's own, and BLAS's."""

from __future__ import annotations


def limit_threads(torch_threads: int) -> None:
    """`torch_threads` intra-op threads for torch, one for BLAS: numpy's work here is tiny
    matrices (optimizer steps, cells, hulls), where BLAS threads only add contention: EMT
    steps ran 5x slower with two on a busy 2-core machine."""
    # threadpool_limits reaches only the BLAS libraries already loaded, and SciPy brings its
    # own OpenBLAS with scipy.linalg (used by every cell-filter step). Left at its default,
    # its idle threads spin and ran two 1-thread relaxation processes 3x slower.
    import scipy.linalg  # noqa: F401
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(torch_threads)
    threadpool_limits(1, user_api="blas")
