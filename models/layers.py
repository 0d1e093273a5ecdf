"""Building blocks of CrystalGNN: radial basis, interaction block, readout."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter


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
        self.register_buffer("centres", torch.linspace(0.0, cutoff, n_rbf))
        self.gamma = 1.0 / (cutoff / (n_rbf - 1)) ** 2

    def forward(self, dist: Tensor) -> Tensor:
        diff = dist.unsqueeze(-1) - self.centres
        return torch.exp(-self.gamma * diff.square())


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
        h_centre, h_neigh = self.node_to_edge(h).split(self.hidden, dim=-1)
        pre = h_centre[dst] + h_neigh[src] + self.edge_in(e)
        e = self.edge_norm(e + self.edge_out(nn.functional.silu(pre)))

        gate, core = self.message(e).split(self.hidden, dim=-1)
        msg = torch.sigmoid(gate) * nn.functional.silu(core) * envelope.unsqueeze(-1)
        agg = scatter(msg, dst, dim=0, dim_size=h.shape[0], reduce="sum")
        update = self.node_out(nn.functional.silu(self.node_in(torch.cat([h, agg], dim=-1))))
        return self.node_norm(h + update), e


class Readout(nn.Module):
    """Per-atom energy, averaged over the atoms of each graph."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    def forward(self, h: Tensor, graph_of_node: Tensor, n_graphs: int) -> Tensor:
        per_atom = self.mlp(h).squeeze(-1)
        return scatter(per_atom, graph_of_node, dim=0, dim_size=n_graphs, reduce="mean")
