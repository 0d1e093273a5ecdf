"""Element graphs built from chemical formulas, the input of the composition model."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pymatgen.core import Composition, Structure
from torch_geometric.data import Data

CompositionLike = Composition | str | Structure


def as_composition(item: CompositionLike) -> Composition:
    """A Composition from a Composition, formula string or Structure."""
    if isinstance(item, Composition):
        return item
    if isinstance(item, Structure):
        return item.composition
    if isinstance(item, str):
        return Composition(item)
    raise TypeError(f"expected a Composition, formula string or Structure, got {type(item)}")


def composition_to_graph(item: CompositionLike) -> Data:
    """One node per distinct element with its atomic fraction, and a directed edge between every
    ordered pair of distinct elements. Only fractions are kept, so 'LiMnO2' and 'Li2Mn2O4' give
    the same graph."""
    comp = as_composition(item)
    # Oxidation states and isotopes carry no information the fraction-based model can use.
    amounts: dict[int, float] = {}
    for species, amount in comp.items():
        z = species.Z
        amounts[z] = amounts.get(z, 0.0) + float(amount)
    if not amounts or any(a <= 0 for a in amounts.values()):
        raise ValueError(f"composition {comp.formula!r} is empty or has non-positive amounts")
    # Sorted so that a formula always maps to the same node order, whatever its spelling.
    zs = sorted(amounts)
    total = sum(amounts.values())
    n = len(zs)
    src = [j for i in range(n) for j in range(n) if j != i]
    dst = [i for i in range(n) for j in range(n) if j != i]
    return Data(
        z=torch.tensor(zs, dtype=torch.int64),
        frac=torch.tensor([amounts[z] / total for z in zs], dtype=torch.float64),
        edge_index=torch.tensor([src, dst], dtype=torch.int64).reshape(2, -1),
        num_nodes=n,
    )


def composition_graphs_for(items: Sequence[CompositionLike]) -> list[Data]:
    """One composition graph per item (see `composition_to_graph`)."""
    return [composition_to_graph(item) for item in items]


def reduced_formula(item: CompositionLike) -> str:
    """The reduced formula of a composition-like item (groups polymorphs in splits)."""
    return as_composition(item).reduced_formula
