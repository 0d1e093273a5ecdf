"""CrystalGNN: a message-passing network predicting formation energy per atom."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from models.layers import (
    GaussianRBF,
    InteractionBlock,
    Readout,
    can_overwrite,
    cosine_envelope,
)
from models.orbits import ReducedBatch
from models.settings import GNNSettings


class CrystalGNN(nn.Module):
    def __init__(self, settings: GNNSettings) -> None:
        super().__init__()
        self.settings = settings
        # +1 so that max_z itself is a valid atomic number (index 0 is unused).
        self.embedding = nn.Embedding(settings.max_z + 1, settings.hidden)
        self.rbf = GaussianRBF(settings.n_rbf, settings.cutoff)
        self.edge_embedding = nn.Linear(settings.n_rbf, settings.hidden)
        self.blocks = nn.ModuleList(
            InteractionBlock(settings.hidden) for _ in range(settings.layers)
        )
        self.readout = Readout(settings.hidden)
        self.to(getattr(torch, settings.dtype))

    def reset_parameters(self) -> None:
        for module in self.modules():
            reset = getattr(module, "reset_parameters", None)
            if module is not self and callable(reset):
                reset()

    def forward(self, batch: Batch | Data | ReducedBatch) -> Tensor:
        """Energy per atom, shape [n_graphs], in the units the model was trained on."""
        z = batch.z
        dist = batch.edge_dist.to(self.rbf.centres.dtype)
        envelope = cosine_envelope(dist, self.settings.cutoff)
        rbf = self.rbf(dist)
        env = envelope.unsqueeze(-1)
        e = self.edge_embedding(rbf.mul_(env) if can_overwrite(rbf) else rbf * env)
        h = self.embedding(z)
        weight = getattr(batch, "edge_weight", None)
        if weight is not None:
            # A merged edge stands for `weight` identical images: count its message that often.
            envelope = envelope * weight.to(envelope.dtype)
        for block in self.blocks:
            h, e = block(h, e, envelope, batch.edge_index)

        graph_of_node = batch.batch
        if graph_of_node is None:
            graph_of_node = torch.zeros_like(z)
        n_graphs = getattr(batch, "num_graphs", 1)
        return self.readout(h, graph_of_node, n_graphs, getattr(batch, "node_weight", None))
