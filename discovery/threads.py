"""Thread limits for a process that relaxes or trains: torch's own, and BLAS's."""

from __future__ import annotations


def limit_threads(torch_threads: int) -> None:
    """`torch_threads` intra-op threads for torch, one for BLAS: numpy's work here is tiny
    matrices (optimizer steps, cells, hulls), where BLAS threads only add contention: EMT
    steps ran 5x slower with two on a busy 2-core machine."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(torch_threads)
    threadpool_limits(1, user_api="blas")
