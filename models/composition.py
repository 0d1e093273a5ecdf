"""CompositionNet: a Roost-like network predicting formation energy per atom from a formula."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from torch_geometric.utils import scatter, softmax

from models.element_features import element_feature_table
from models.settings import CompositionSettings


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, n_out))


def _log_frac(frac: Tensor) -> Tensor:
    # Fractions are > 0 by construction; the clamp only guards against float underflow.
    return torch.log(frac.clamp_min(1e-12))


class FractionAttention(nn.Module):
    """One round of message passing between elements. The attention weight of neighbour j is
    frac_j * exp(gate_ij), normalised over j (Roost's weighted soft attention), so that a trace
    element barely moves its hosts."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.gate = _mlp(2 * hidden, hidden, 1)
        self.message = _mlp(2 * hidden, hidden, hidden)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, h: Tensor, log_frac: Tensor, edge_index: Tensor) -> Tensor:
        src, dst = edge_index
        pair = torch.cat([h[dst], h[src]], dim=-1)
        logits = self.gate(pair).squeeze(-1) + log_frac[src]
        weight = softmax(logits, dst, num_nodes=h.shape[0])
        agg = scatter(
            weight.unsqueeze(-1) * self.message(pair), dst, dim=0, dim_size=h.shape[0], reduce="sum"
        )
        return self.norm(h + agg)


class CompositionNet(nn.Module):
    def __init__(self, settings: CompositionSettings) -> None:
        super().__init__()
        self.settings = settings
        hidden = settings.hidden
        # +1 so that max_z itself is a valid atomic number (index 0 is unused).
        self.embedding = nn.Embedding(settings.max_z + 1, hidden)
        self.descriptors: nn.Linear | None = None
        self.element_table: Tensor  # a buffer, registered with the descriptors
        if settings.element_descriptors:
            table = torch.from_numpy(element_feature_table(settings.max_z))
            # Saved with the weights, so a checkpoint means the same after a pymatgen update.
            self.register_buffer("element_table", table)
            self.descriptors = nn.Linear(table.shape[1], hidden)
        # Both the fraction and its log: the log resolves dopant-level amounts.
        self.frac_encoder = _mlp(2, hidden, hidden)
        self.blocks = nn.ModuleList(FractionAttention(hidden) for _ in range(settings.layers))
        self.pool_gate = _mlp(hidden, hidden, 1)
        self.pool_value = _mlp(hidden, hidden, hidden)
        self.head = _mlp(hidden, hidden, 1)
        self.to(getattr(torch, settings.dtype))

    def forward(self, batch: Batch | Data) -> Tensor:
        """Energy per atom, shape [n_graphs], in the units the model was trained on."""
        dtype = self.head[0].weight.dtype
        frac = batch.frac.to(dtype)
        log_frac = _log_frac(frac)
        h = self.embedding(batch.z) + self.frac_encoder(torch.stack([frac, log_frac], dim=-1))
        if self.descriptors is not None:
            h = h + self.descriptors(self.element_table[batch.z])
        for block in self.blocks:
            h = block(h, log_frac, batch.edge_index)

        graph_of_node = batch.batch
        if graph_of_node is None:
            graph_of_node = torch.zeros_like(batch.z)
        n_graphs = getattr(batch, "num_graphs", 1)
        weight = softmax(
            self.pool_gate(h).squeeze(-1) + log_frac, graph_of_node, num_nodes=n_graphs
        )
        pooled = scatter(
            weight.unsqueeze(-1) * self.pool_value(h),
            graph_of_node,
            dim=0,
            dim_size=n_graphs,
            reduce="sum",
        )
        return self.head(pooled).squeeze(-1)
