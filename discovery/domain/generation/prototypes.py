"""Built-in prototype structures, built from space group + Wyckoff positions.

Ionic prototypes carry the oxidation states of their representative compound, which the
substitution generator needs for pymatgen's data-mined substitution probabilities; metallic
prototypes carry neutral species. Lattice constants are the representative compound's; the
substitution generator rescales the volume for the new elements.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from pymatgen.core import Composition, Lattice, Structure

LatticeParameters = tuple[float, float, float, float, float, float]  # a, b, c, alpha, beta, gamma


@dataclass(frozen=True)
class Prototype:
    name: str  # "<structure type>-<representative compound>"
    formula: str  # expected composition of the conventional cell, checked in tests
    spacegroup: str
    lattice: LatticeParameters
    species: tuple[str, ...]
    coords: tuple[tuple[float, float, float], ...]

    @property
    def ionic(self) -> bool:
        return any(ch in s for s in self.species for ch in "+-")

    def build(self) -> Structure:
        lattice = Lattice.from_parameters(*self.lattice)
        conv = Structure.from_spacegroup(self.spacegroup, lattice, self.species, self.coords)
        return conv.get_primitive_structure()


def _cubic(a: float) -> LatticeParameters:
    return (a, a, a, 90.0, 90.0, 90.0)


def _hex(a: float, c: float) -> LatticeParameters:
    return (a, a, c, 90.0, 90.0, 120.0)


def _tetragonal(a: float, c: float) -> LatticeParameters:
    return (a, a, c, 90.0, 90.0, 90.0)


_PROTOTYPES: tuple[Prototype, ...] = (
    # ionic
    Prototype(
        "rocksalt-NaCl", "NaCl", "Fm-3m", _cubic(5.64), ("Na+", "Cl-"), ((0, 0, 0), (0.5, 0.5, 0.5))
    ),
    Prototype(
        "rocksalt-MgO", "MgO", "Fm-3m", _cubic(4.21), ("Mg2+", "O2-"), ((0, 0, 0), (0.5, 0.5, 0.5))
    ),
    Prototype(
        "cscl-CsCl", "CsCl", "Pm-3m", _cubic(4.12), ("Cs+", "Cl-"), ((0, 0, 0), (0.5, 0.5, 0.5))
    ),
    Prototype(
        "zincblende-ZnS",
        "ZnS",
        "F-43m",
        _cubic(5.41),
        ("Zn2+", "S2-"),
        ((0, 0, 0), (0.25, 0.25, 0.25)),
    ),
    Prototype(
        "wurtzite-ZnO",
        "ZnO",
        "P6_3mc",
        _hex(3.25, 5.21),
        ("Zn2+", "O2-"),
        ((1 / 3, 2 / 3, 0), (1 / 3, 2 / 3, 0.382)),
    ),
    Prototype(
        "fluorite-CaF2",
        "CaF2",
        "Fm-3m",
        _cubic(5.46),
        ("Ca2+", "F-"),
        ((0, 0, 0), (0.25, 0.25, 0.25)),
    ),
    Prototype(
        "antifluorite-Li2O",
        "Li2O",
        "Fm-3m",
        _cubic(4.61),
        ("O2-", "Li+"),
        ((0, 0, 0), (0.25, 0.25, 0.25)),
    ),
    Prototype(
        "rutile-TiO2",
        "TiO2",
        "P4_2/mnm",
        _tetragonal(4.59, 2.96),
        ("Ti4+", "O2-"),
        ((0, 0, 0), (0.305, 0.305, 0)),
    ),
    Prototype(
        "cdi2-CdI2",
        "CdI2",
        "P-3m1",
        _hex(4.24, 6.84),
        ("Cd2+", "I-"),
        ((0, 0, 0), (1 / 3, 2 / 3, 0.25)),
    ),
    Prototype(
        "nias-NiAs",
        "NiAs",
        "P6_3/mmc",
        _hex(3.62, 5.03),
        ("Ni3+", "As3-"),
        ((0, 0, 0), (1 / 3, 2 / 3, 0.25)),
    ),
    Prototype(
        "corundum-Al2O3",
        "Al2O3",
        "R-3c",
        _hex(4.76, 12.99),
        ("Al3+", "O2-"),
        ((0, 0, 0.352), (0.306, 0, 0.25)),
    ),
    Prototype(
        "perovskite-SrTiO3",
        "SrTiO3",
        "Pm-3m",
        _cubic(3.905),
        ("Sr2+", "Ti4+", "O2-"),
        ((0.5, 0.5, 0.5), (0, 0, 0), (0.5, 0, 0)),
    ),
    # origin choice 1 of Fd-3m, the setting pymatgen's symbol lookup uses
    Prototype(
        "spinel-MgAl2O4",
        "MgAl2O4",
        "Fd-3m",
        _cubic(8.08),
        ("Mg2+", "Al3+", "O2-"),
        ((0, 0, 0), (0.625, 0.625, 0.625), (0.387, 0.387, 0.387)),
    ),
    Prototype(
        "layered-LiCoO2",
        "LiCoO2",
        "R-3m",
        _hex(2.82, 14.05),
        ("Li+", "Co3+", "O2-"),
        ((0, 0, 0.5), (0, 0, 0), (0, 0, 0.26)),
    ),
    Prototype(
        "anatase-TiO2",
        "TiO2",
        "I4_1/amd",
        _tetragonal(3.785, 9.514),
        ("Ti4+", "O2-"),
        ((0, 0, 0), (0, 0, 0.2081)),
    ),
    Prototype(
        "olivine-Mg2SiO4",
        "Mg2SiO4",
        "Pnma",
        (10.19, 5.98, 4.75, 90.0, 90.0, 90.0),
        ("Mg2+", "Mg2+", "Si4+", "O2-", "O2-", "O2-"),
        (
            (0, 0, 0),
            (0.277, 0.25, 0.991),
            (0.094, 0.25, 0.426),
            (0.092, 0.25, 0.766),
            (0.447, 0.25, 0.221),
            (0.163, 0.033, 0.278),
        ),
    ),
    Prototype(
        "pyrite-FeS2",
        "FeS2",
        "Pa-3",
        _cubic(5.418),
        ("Fe2+", "S-"),
        ((0, 0, 0), (0.385, 0.385, 0.385)),
    ),
    Prototype(
        "2H-MoS2",
        "MoS2",
        "P6_3/mmc",
        _hex(3.16, 12.29),
        ("Mo4+", "S2-"),
        ((1 / 3, 2 / 3, 0.25), (1 / 3, 2 / 3, 0.621)),
    ),
    Prototype(
        "ReO3-ReO3", "ReO3", "Pm-3m", _cubic(3.75), ("Re6+", "O2-"), ((0, 0, 0), (0.5, 0, 0))
    ),
    Prototype(
        "ilmenite-FeTiO3",
        "FeTiO3",
        "R-3",
        _hex(5.088, 14.09),
        ("Fe2+", "Ti4+", "O2-"),
        ((0, 0, 0.3554), (0, 0, 0.1464), (0.317, 0.020, 0.245)),
    ),
    Prototype(
        "delafossite-CuFeO2",
        "CuFeO2",
        "R-3m",
        _hex(3.03, 17.17),
        ("Cu+", "Fe3+", "O2-"),
        ((0, 0, 0), (0, 0, 0.5), (0, 0, 0.1066)),
    ),
    Prototype(
        "Li3N-Li3N",
        "Li3N",
        "P6/mmm",
        _hex(3.65, 3.87),
        ("N3-", "Li+", "Li+"),
        ((0, 0, 0), (0, 0, 0.5), (1 / 3, 2 / 3, 0)),
    ),
    Prototype(
        "chalcopyrite-CuFeS2",
        "CuFeS2",
        "I-42d",
        _tetragonal(5.29, 10.42),
        ("Cu+", "Fe3+", "S2-"),
        ((0, 0, 0), (0, 0, 0.5), (0.257, 0.25, 0.125)),
    ),
    Prototype(
        "K2NiF4-Sr2TiO4",
        "Sr2TiO4",
        "I4/mmm",
        _tetragonal(3.88, 12.6),
        ("Sr2+", "Ti4+", "O2-", "O2-"),
        ((0, 0, 0.355), (0, 0, 0), (0, 0.5, 0), (0, 0, 0.152)),
    ),
    # metallic
    Prototype(
        "half-Heusler-TiNiSn",
        "TiNiSn",
        "F-43m",
        _cubic(5.94),
        ("Ti", "Sn", "Ni"),
        ((0, 0, 0), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
    ),
    Prototype(
        "A15-Cr3Si", "Cr3Si", "Pm-3n", _cubic(4.56), ("Si", "Cr"), ((0, 0, 0), (0.25, 0, 0.5))
    ),
    # origin choice 1 of Fd-3m, as for spinel
    Prototype(
        "C15-MgCu2",
        "MgCu2",
        "Fd-3m",
        _cubic(7.05),
        ("Mg", "Cu"),
        ((0, 0, 0), (0.625, 0.625, 0.625)),
    ),
    Prototype(
        "C14-MgZn2",
        "MgZn2",
        "P6_3/mmc",
        _hex(5.22, 8.57),
        ("Mg", "Zn", "Zn"),
        ((1 / 3, 2 / 3, 0.063), (0, 0, 0), (0.83, 0.66, 0.25)),
    ),
    Prototype(
        "D0_19-Ni3Sn",
        "Ni3Sn",
        "P6_3/mmc",
        _hex(5.29, 4.24),
        ("Sn", "Ni"),
        ((1 / 3, 2 / 3, 0.25), (5 / 6, 2 / 3, 0.25)),
    ),
    Prototype(
        "L1_2-Cu3Au", "Cu3Au", "Pm-3m", _cubic(3.75), ("Au", "Cu"), ((0, 0, 0), (0.5, 0.5, 0))
    ),
    Prototype(
        "L1_0-CuAu",
        "CuAu",
        "P4/mmm",
        _tetragonal(2.80, 3.67),
        ("Cu", "Au"),
        ((0, 0, 0), (0.5, 0.5, 0.5)),
    ),
    Prototype("B2-CuZn", "CuZn", "Pm-3m", _cubic(2.95), ("Cu", "Zn"), ((0, 0, 0), (0.5, 0.5, 0.5))),
    Prototype(
        "D0_3-Fe3Al",
        "Fe3Al",
        "Fm-3m",
        _cubic(5.79),
        ("Al", "Fe", "Fe"),
        ((0, 0, 0), (0.25, 0.25, 0.25), (0.5, 0.5, 0.5)),
    ),
    Prototype(
        "C11b-MoSi2",
        "MoSi2",
        "I4/mmm",
        _tetragonal(3.20, 7.85),
        ("Mo", "Si"),
        ((0, 0, 0), (0, 0, 0.333)),
    ),
    Prototype(
        "L1_1-CuPt", "CuPt", "R-3m", _hex(2.68, 13.1), ("Cu", "Pt"), ((0, 0, 0), (0, 0, 0.5))
    ),
    Prototype(
        "L2_1-Cu2MnAl",
        "Cu2MnAl",
        "Fm-3m",
        _cubic(5.95),
        ("Cu", "Mn", "Al"),
        ((0.25, 0.25, 0.25), (0, 0, 0), (0.5, 0.5, 0.5)),
    ),
)


def prototype_names() -> list[str]:
    """Names of the built-in prototypes, in table order."""
    return [p.name for p in _PROTOTYPES]


def get_prototype(name: str) -> Prototype:
    """The built-in prototype of this name; KeyError listing the known names otherwise."""
    for p in _PROTOTYPES:
        if p.name == name:
            return p
    raise KeyError(f"unknown prototype {name!r}; known: {', '.join(prototype_names())}")


def prototypes(names: list[str] | None = None) -> list[Prototype]:
    """The named built-in prototypes in the order given, or all of them for None."""
    return list(_PROTOTYPES) if names is None else [get_prototype(n) for n in names]


@cache
def _built(name: str) -> Structure:
    return get_prototype(name).build()


def prototype_structure(name: str) -> Structure:
    """A fresh copy of a prototype's primitive cell (built once, then copied)."""
    return _built(name).copy()


def expected_composition(p: Prototype) -> Composition:
    """The composition the prototype's conventional cell must have (checked in the tests)."""
    return Composition(p.formula)
