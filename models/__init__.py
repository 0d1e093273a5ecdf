"""Crystal GNN ensembles for formation-energy screening with uncertainty."""

from models.checkpoints import CheckpointMismatchError
from models.device import resolve_device
from models.ensemble import Ensemble
from models.gnn import CrystalGNN
from models.graphs import structure_to_graph
from models.records import Prediction, TrainReport
from models.settings import GNNSettings, TrainSettings

__all__ = [
    "CheckpointMismatchError",
    "CrystalGNN",
    "Ensemble",
    "GNNSettings",
    "Prediction",
    "TrainReport",
    "TrainSettings",
    "resolve_device",
    "structure_to_graph",
]
