"""Building blocks of CrystalGNN: radial basis, interaction block, readout."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch_geometric.utils import scatter

# exp() of arguments below about -87 (float32) or -708 (float64) underflows to subnormals or zero,
# and on x86 CPUs both the exp and the matmuls that consume subnormals then run up to 10x slower.
# Clamping the Gaussians' exponent here changes them by at most exp(-80) ~ 2e-35, far below the
# rounding error of either float type relative to the nearest Gaussian, which is always > 0.7.
_MIN_EXPONENT = -80.0

# Edges per chunk when screening on the CPU. All edge-sized temporaries of a chunk (1 MiB each at
# hidden=64, float32) stay in L2 and are recycled by malloc; whole-batch temporaries of several
# MiB are handed back to the OS and faulted in afresh on every op, which cost ~25% at batch 64.
_EDGE_CHUNK = 4096


def can_overwrite(x: Tensor) -> bool:
    """True if `x` may be overwritten in place: autograd does not need it (no_grad, inference
    mode, or inputs that do not require grad). Saves an allocation and a pass per op when
    screening, while training keeps the out-of-place ops autograd needs."""
    return not x.requires_grad


def cosine_envelope(dist: Tensor, cutoff: float) -> Tensor:
    """Goes smoothly to zero at the cutoff so that atoms crossing it do not make the energy jump."""
    env = 0.5 * (torch.cos(dist * (math.pi / cutoff)) + 1.0)
    return torch.where(dist < cutoff, env, torch.zeros_like(env))


class GaussianRBF(nn.Module):
    """Gaussians with evenly spaced centres on [0, cutoff], widths equal to the spacing."""

    def __init__(self, n_rbf: int, cutoff: float) -> None:
        super().__init__()
        self.cutoff = cutoff
        # A buffer so the centres follow .to(device/dtype) and define the model's working dtype.
        self.centres: Tensor
        self.register_buffer("centres", torch.linspace(0.0, cutoff, n_rbf))
        self.gamma = 1.0 / (cutoff / (n_rbf - 1)) ** 2

    def forward(self, dist: Tensor) -> Tensor:
        diff = dist.unsqueeze(-1) - self.centres
        if can_overwrite(diff):
            return diff.square_().mul_(-self.gamma).clamp_(min=_MIN_EXPONENT).exp_()
        return torch.exp((-self.gamma * diff.square()).clamp(min=_MIN_EXPONENT))


class InteractionBlock(nn.Module):
    """Edge update from [h_i, h_j, e_ij], then a node update from gated, enveloped edge messages."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        # The first edge-MLP layer on the concatenation [h_i, h_j, e_ij] is split into per-node
        # and per-edge parts: applying the node parts before gathering is exact and much cheaper.
        self.node_to_edge = nn.Linear(hidden, 2 * hidden, bias=False)
        self.edge_in = nn.Linear(hidden, hidden)
        self.edge_out = nn.Linear(hidden, hidden)
        self.edge_norm = nn.LayerNorm(hidden)
        self.message = nn.Linear(hidden, 2 * hidden)
        self.node_in = nn.Linear(2 * hidden, hidden)
        self.node_out = nn.Linear(hidden, hidden)
        self.node_norm = nn.LayerNorm(hidden)

    def forward(
        self, h: Tensor, e: Tensor, envelope: Tensor, edge_index: Tensor
    ) -> tuple[Tensor, Tensor]:
        src, dst = edge_index
        hidden = self.hidden
        h_centre, h_neigh = self.node_to_edge(h).split(hidden, dim=-1)
        # edge_in's bias is the same for every edge, so it is added once per node.
        h_centre = h_centre + self.edge_in.bias
        env = envelope.unsqueeze(-1)
        if can_overwrite(h_centre):
            e, agg = self._edges_in_place(h_centre, h_neigh, e, env, src, dst)
        else:
            # message's weight is used as two products on its halves rather than one split
            # afterwards: the halves come out contiguous, and the element-wise ops and the
            # scatter run 1.5-8x faster on contiguous tensors than on strided views.
            w_gate, w_core = self.message.weight.split(hidden)
            b_gate, b_core = self.message.bias.split(hidden)
            pre = h_centre.index_select(0, dst) + h_neigh.index_select(0, src)
            pre = F.silu(torch.addmm(pre, e, self.edge_in.weight.t()))
            e = self.edge_norm(e + self.edge_out(pre))
            msg = torch.sigmoid(F.linear(e, w_gate, b_gate)) * F.silu(F.linear(e, w_core, b_core))
            agg = scatter(msg * env, dst, dim=0, dim_size=h.shape[0], reduce="sum")
        update = self.node_out(F.silu(self.node_in(torch.cat([h, agg], dim=-1))))
        return self.node_norm(h + update), e

    def _edges_in_place(
        self, h_centre: Tensor, h_neigh: Tensor, e: Tensor, env: Tensor, src: Tensor, dst: Tensor
    ) -> tuple[Tensor, Tensor]:
        """The edge update and the summed messages, without autograd (screening): the same
        arithmetic as the autograd branch of forward, in chunks of edges on the CPU, with two
        chunk-sized buffers recycled through every step of a chunk."""
        hidden = self.hidden
        w_gate, w_core = self.message.weight.split(hidden)
        b_gate, b_core = self.message.bias.split(hidden)
        n_edges = e.shape[0]
        # A GPU gains nothing from chunks but kernel launches.
        chunk = _EDGE_CHUNK if e.device.type == "cpu" else max(n_edges, 1)
        e_new = torch.empty_like(e)
        agg = e.new_zeros(h_centre.shape[0], hidden)
        for start in range(0, n_edges, chunk):
            edges = slice(start, start + chunk)
            e_old, dst_chunk = e[edges], dst[edges]
            # index_select is an order of magnitude faster than advanced indexing on the CPU.
            pre = h_centre.index_select(0, dst_chunk)
            neigh = h_neigh.index_select(0, src[edges])
            pre.add_(neigh).addmm_(e_old, self.edge_in.weight.t())
            F.silu(pre, inplace=True)
            out = torch.addmm(self.edge_out.bias, pre, self.edge_out.weight.t(), out=neigh)
            e_chunk = e_new[edges]
            e_chunk.copy_(self.edge_norm(out.add_(e_old)))
            gate = torch.addmm(b_gate, e_chunk, w_gate.t(), out=pre)
            core = torch.addmm(b_core, e_chunk, w_core.t(), out=neigh)
            msg = gate.sigmoid_().mul_(F.silu(core, inplace=True)).mul_(env[edges])
            agg.index_add_(0, dst_chunk, msg)
        return e_new, agg


class Readout(nn.Module):
    """Per-atom energy, averaged over the atoms of each graph."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    def forward(
        self, h: Tensor, graph_of_node: Tensor, n_graphs: int, node_weight: Tensor | None = None
    ) -> Tensor:
        """`node_weight` counts the atoms each node stands for (see models.orbits)."""
        per_atom = self.mlp(h).squeeze(-1)
        if node_weight is None:
            return scatter(per_atom, graph_of_node, dim=0, dim_size=n_graphs, reduce="mean")
        node_weight = node_weight.to(per_atom.dtype)
        total = scatter(per_atom * node_weight, graph_of_node, dim=0, dim_size=n_graphs)
        return total / scatter(node_weight, graph_of_node, dim=0, dim_size=n_graphs)
