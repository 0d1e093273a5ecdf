"""Model kinds an Ensemble can hold: which settings, which network, which input graphs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn
from torch_geometric.data import Batch, Data

from models.composition import CompositionNet
from models.composition_graphs import composition_graphs_for, reduced_formula
from models.gnn import CrystalGNN
from models.graph_cache import crystal_graphs
from models.orbits import reduce_equivalent_atoms
from models.settings import CompositionSettings, GNNSettings


@dataclass(frozen=True)
class ModelKind:
    name: str
    settings_cls: type[GNNSettings] | type[CompositionSettings]
    build: Callable[[Any], nn.Module]
    # (inputs, settings, graph cache or None) -> graphs
    to_graphs: Callable[[Sequence[Any], Any, Any], list[Data]]
    # Grouping key for validation splits: polymorphs of one formula must stay together.
    group_key: Callable[[Any], str]
    describe: Callable[[Any], str]
    # Applied to every collated CPU batch before it goes to the device, in training and
    # prediction alike; must leave the model's outputs unchanged.
    prepare: Callable[[Batch], Any] = lambda batch: batch


CRYSTAL = ModelKind(
    name="crystal",
    settings_cls=GNNSettings,
    build=CrystalGNN,
    to_graphs=lambda structures, settings, cache: crystal_graphs(
        list(structures), settings.cutoff, cache
    ),
    group_key=lambda structure: structure.composition.reduced_formula,
    describe=lambda structure: structure.formula,
    prepare=reduce_equivalent_atoms,
)

COMPOSITION = ModelKind(
    name="composition",
    settings_cls=CompositionSettings,
    build=CompositionNet,
    # Element graphs cost microseconds: not worth a cache.
    to_graphs=lambda items, settings, cache: composition_graphs_for(items),
    group_key=reduced_formula,
    describe=lambda item: str(item),
)

KINDS = {kind.name: kind for kind in (CRYSTAL, COMPOSITION)}


def kind_of(settings: Any) -> ModelKind:
    """The model kind whose settings class `settings` is an instance of; TypeError otherwise."""
    for kind in KINDS.values():
        if type(settings) is kind.settings_cls:
            return kind
    raise TypeError(f"no model kind takes settings of type {type(settings).__name__}")


def kind_named(name: str) -> ModelKind:
    """The model kind called `name`; ValueError listing the known kinds otherwise."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown model kind {name!r}; known: {sorted(KINDS)}") from None
