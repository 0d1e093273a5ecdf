"""A faster form of e3nn's generated tensor-product code, with the same numbers.

Applied to every SevenNet-0 model this package builds (single-structure and batched), so the
ASE calculator and the batched relaxer run the same code.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch import fx


def split_weight_slices(model: torch.nn.Module) -> int:
    """Rewrite e3nn's generated tensor-product code to cut its inputs with one split.

    The generated code slices the per-edge weights (E × 960 for SevenNet-0) once per path,
    and the backward pass of every slice allocates and zero-fills a full E × 960 gradient
    before the slices' gradients are summed: a third of a SevenNet-0 force evaluation on
    a batch of small cells. One ``split_with_sizes`` per input gives the same views, whose
    backward is one concatenation. Unused outer products the generator leaves behind are
    dropped. Forward values are unchanged bit for bit. Applied once per model; returns the
    number of tensors rewritten.
    """
    from e3nn.o3 import TensorProduct

    if getattr(model, "_weight_slices_split", False):
        return 0
    rewritten = 0
    for module in model.modules():
        if not isinstance(module, TensorProduct):
            continue
        for child in module.children():
            if isinstance(child, fx.GraphModule):
                rewritten += _rewrite_graph(child)
    # torch types Module.__setattr__ for tensors and modules only; a flag is a plain attribute.
    model._weight_slices_split = True  # type: ignore[assignment]
    return rewritten


# Node targets that compute a value and nothing else: safe to drop when unused. (fx's own
# eliminate_dead_code also drops e3nn's in-place ``out[..., a:b] = x`` copies.)
_PURE_FUNCTIONS = {torch.einsum, torch.functional.einsum, operator.getitem}
_PURE_METHODS = {"reshape", "view", "expand", "narrow"}


def _rewrite_graph(gm: fx.GraphModule) -> int:
    graph = gm.graph
    _drop_unused(graph)
    rewritten = 0
    for node in list(graph.nodes):
        by_dim: dict[int, list[tuple[int, int, fx.Node]]] = {}
        for user in list(node.users):
            if (
                user.op == "call_function"
                and user.target is operator.getitem
                and user.args[0] is node
                and (spec := _trailing_slice(user.args[1])) is not None
            ):
                dim, start, stop = spec
                by_dim.setdefault(dim, []).append((start, stop, user))
        for dim, cuts in by_dim.items():
            cuts.sort(key=lambda c: (c[0], c[1]))
            # Only disjoint slices map onto one split; anything else is left as it was.
            if len(cuts) < 2 or any(a[1] > b[0] for a, b in zip(cuts, cuts[1:], strict=False)):
                continue
            bounds = tuple((start, stop) for start, stop, _ in cuts)
            with graph.inserting_after(node):
                split = graph.call_function(_disjoint_slices, (node, dim, bounds))
            for k, (_, _, user) in enumerate(cuts):
                with graph.inserting_after(split):
                    piece = graph.call_function(operator.getitem, (split, k))
                user.replace_all_uses_with(piece)
                graph.erase_node(user)
            rewritten += 1
    graph.lint()
    gm.recompile()
    return rewritten


def _drop_unused(graph: fx.Graph) -> None:
    changed = True
    while changed:
        changed = False
        for node in reversed(list(graph.nodes)):
            pure = (node.op == "call_function" and node.target in _PURE_FUNCTIONS) or (
                node.op == "call_method" and node.target in _PURE_METHODS
            )
            if pure and not node.users:
                graph.erase_node(node)
                changed = True


def _trailing_slice(index: Any) -> tuple[int, int, int] | None:
    """(dim, start, stop) for ``x[..., a:b]`` or ``x[:, ..., :, a:b]`` (step 1, a, b >= 0)."""
    if not isinstance(index, tuple) or not index:
        return None
    *lead, last = index
    if not isinstance(last, slice) or last.step not in (None, 1) or last.stop is None:
        return None
    start = last.start or 0
    if start < 0 or last.stop < 0:
        return None
    if lead == [Ellipsis]:
        return -1, start, last.stop
    if all(isinstance(s, slice) and s == slice(None) for s in lead):
        return len(lead), start, last.stop
    return None


def _disjoint_slices(
    tensor: torch.Tensor, dim: int, bounds: tuple[tuple[int, int], ...]
) -> tuple[torch.Tensor, ...]:
    """``tensor`` cut at sorted, disjoint ``[start, stop)`` along ``dim``, as one split."""
    n = tensor.shape[dim]
    sizes: list[int] = []
    keep: list[int] = []
    position = 0
    for start, stop in bounds:
        start, stop = min(start, n), min(stop, n)  # as slicing clamps
        if start > position:
            sizes.append(start - position)
        keep.append(len(sizes))
        sizes.append(stop - start)
        position = stop
    if position < n:
        sizes.append(n - position)
    pieces = torch.split_with_sizes(tensor, sizes, dim)
    return tuple(pieces[k] for k in keep)
