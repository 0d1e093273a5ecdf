"""Crystal GNN and composition-model ensembles for formation-energy screening with uncertainty."""

from models.checkpoints import CheckpointMismatchError
from models.composition import CompositionNet
from models.composition_graphs import composition_to_graph
from models.device import resolve_device
from models.ensemble import Ensemble
from models.gnn import CrystalGNN
from models.graphs import structure_to_graph
from models.records import Prediction, TrainReport
from models.settings import CompositionSettings, GNNSettings, TrainSettings

__all__ = [
    "CheckpointMismatchError",
    "CompositionNet",
    "CompositionSettings",
    "CrystalGNN",
    "Ensemble",
    "GNNSettings",
    "Prediction",
    "TrainReport",
    "TrainSettings",
    "composition_to_graph",
    "resolve_device",
    "structure_to_graph",
]
