"""Physical descriptors of the elements, from pymatgen's periodic table, as model inputs.

A learned embedding knows an element only from the training rows that contain it; descriptors
(electronegativity, radius, group, valence shell, ...) let a model carry what it learned about
one element over to its chemical neighbours, which matters for the ten-thousand-row data sets
a campaign or a WBM split provides. The table is computed locally (no download) and
standardised column by column; missing values are the column mean plus a 'missing' flag.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
from pymatgen.core import Element

# Scalar Element attributes; some are None or raise for a few heavy or noble elements.
_SCALARS = (
    "X",
    "row",
    "group",
    "atomic_radius",
    "atomic_mass",
    "mendeleev_no",
    "average_ionic_radius",
    "electron_affinity",
    "ionization_energy",
    "molar_volume",
    "melting_point",
    "max_oxidation_state",
    "min_oxidation_state",
)
_BLOCKS = ("s", "p", "d", "f")


def _scalar(element: Element, name: str) -> float:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen warns about missing data it then returns
            value = getattr(element, name)
        return float(value) if value is not None else np.nan
    except (AttributeError, TypeError, ValueError, KeyError):
        return np.nan


def _valence_shell(element: Element) -> list[float]:
    """Electrons in the outer s, p, d and f subshells (the ones chemistry uses)."""
    config = element.full_electronic_structure
    n_max = max(n for n, _l, _occ in config)
    outer = {"s": n_max, "p": n_max, "d": n_max - 1, "f": n_max - 2}
    counts = dict.fromkeys(_BLOCKS, 0.0)
    for n, subshell, occupancy in config:
        if n == outer[subshell]:
            counts[subshell] += occupancy
    return [counts[b] for b in _BLOCKS]


def _raw_row(z: int) -> list[float]:
    element = Element.from_Z(z)
    row = [float(z)] + [_scalar(element, name) for name in _SCALARS]
    row += _valence_shell(element)
    row += [1.0 if element.block == b else 0.0 for b in _BLOCKS]
    row += [1.0 if element.is_metal else 0.0]
    return row


@functools.cache
def _table(max_z: int) -> np.ndarray:
    raw = np.array([_raw_row(z) for z in range(1, max_z + 1)], dtype=np.float64)
    missing = np.isnan(raw)
    mean = np.nanmean(raw, axis=0)
    filled = np.where(missing, mean, raw)
    std = filled.std(axis=0)
    standardised = (filled - mean) / np.where(std > 0, std, 1.0)
    flags = missing[:, missing.any(axis=0)].astype(np.float64)
    # Row 0 stands for 'no element' (index 0 of the embedding) and stays zero.
    body = np.hstack([standardised, flags])
    return np.vstack([np.zeros((1, body.shape[1])), body])


def element_feature_table(max_z: int) -> np.ndarray:
    """[max_z + 1, n_features] array; row z describes the element with atomic number z."""
    if not 1 <= max_z <= 103:
        raise ValueError(f"element descriptors cover Z = 1..103, got max_z={max_z}")
    return _table(max_z).copy()
