"""Reference structures for the hull: elemental polymorphs and the user's known compounds.

Every reference is relaxed by the campaign's own simulator, so formation energies and hulls
never mix fidelities. Each element gets a few simple polymorphs (fcc, bcc, hcp, plus diamond
for group 14 and an isolated dimer in a box for the diatomic gases); the lowest relaxed
energy per atom becomes that element's chemical potential.
"""

from __future__ import annotations

import math
from pathlib import Path

from pymatgen.core import Element, Lattice, Structure

from discovery.domain.generation.prototypes import get_prototype, prototype_structure
from discovery.domain.generation.structure_checks import structure_problem
from discovery.domain.generation.substitution import substitute
from discovery.domain.records import CandidateRecord

DIATOMIC = {"H", "N", "O", "F", "Cl", "Br", "I"}
DIAMOND = {"C", "Si", "Ge", "Sn"}
BOX = 10.0  # Å; large enough that a dimer does not see its images within a 6 Å cutoff


def _radius(el: Element) -> float:
    r = el.metallic_radius if el.metallic_radius and el.metallic_radius > 0 else None
    return float(r or el.atomic_radius or 1.4)


def elemental_polymorphs(symbol: str) -> list[CandidateRecord]:
    """Reference structures of one element: a dimer in a fixed box for diatomic gases,
    otherwise fcc, bcc and hcp cells sized from its atomic radius."""
    el = Element(symbol)
    if symbol in DIATOMIC:
        bond = 2 * float(el.atomic_radius_calculated or el.atomic_radius or 0.6) * 0.9
        lattice = Lattice.cubic(BOX)
        dimer = Structure(
            lattice, [symbol, symbol], [[0.0, 0.0, 0.0], [0, 0, bond]], coords_are_cartesian=True
        )
        return [CandidateRecord(dimer, "reference", f"dimer-{symbol}", {"fixed_cell": True})]
    r = _radius(el)
    out = [
        (
            "fcc",
            Structure(
                Lattice.cubic(2 * math.sqrt(2) * r),
                [symbol] * 4,
                [[0.0, 0.0, 0.0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
            ),
        ),
        (
            "bcc",
            Structure(
                Lattice.cubic(4 * r / math.sqrt(3)),
                [symbol] * 2,
                [[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]],
            ),
        ),
        (
            "hcp",
            Structure(
                Lattice.hexagonal(2 * r, 2 * r * math.sqrt(8 / 3)),
                [symbol] * 2,
                [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]],
            ),
        ),
    ]
    if symbol in DIAMOND:
        a = 8 * float(el.atomic_radius or 1.1) / math.sqrt(3)
        out.append(
            ("diamond", Structure.from_spacegroup("Fd-3m", Lattice.cubic(a), [symbol], [[0, 0, 0]]))
        )
    return [
        CandidateRecord(s.get_primitive_structure(), "reference", f"{name}-{symbol}", {})
        for name, s in out
    ]


def known_compound(spec: str) -> CandidateRecord:
    """'PROTOTYPE:El1,El2,...' (elements in the prototype's species order) or a file path."""
    path = Path(spec)
    if ":" in spec and not path.exists():
        name, _, els = spec.partition(":")
        proto = get_prototype(name)
        targets = [e.strip() for e in els.split(",")]
        base = prototype_structure(name)
        order = list(dict.fromkeys(site.specie for site in base))
        # species order of the prototype definition, not of the primitive cell
        declared = list(dict.fromkeys(proto.species))
        order = sorted(order, key=lambda sp: declared.index(str(sp)))
        if len(targets) != len(order):
            raise ValueError(
                f"known compound {spec!r}: {name} has {len(order)} species "
                f"({', '.join(map(str, order))}), got {len(targets)} elements"
            )
        mapping = {sp: Element(t) for sp, t in zip(order, targets, strict=True)}
        return CandidateRecord(substitute(base, mapping), "reference", name, {"spec": spec})
    if not path.is_file():
        raise ValueError(f"known compound {spec!r} is neither 'prototype:elements' nor a file")
    try:
        structure = Structure.from_file(path)
    except Exception as err:  # pymatgen raises many kinds on a bad file; the file is the news
        raise ValueError(f"known compound {path}: cannot parse structure: {err}") from None
    problem = structure_problem(structure)
    if problem is not None:
        raise ValueError(f"known compound {path}: {problem}")
    if not structure.is_ordered:
        raise ValueError(f"known compound {path} has partial occupancies; order it first")
    return CandidateRecord(structure, "reference", path.name, {"file": str(path)})


def reference_records(elements: tuple[str, ...], known: list[str]) -> list[CandidateRecord]:
    """The references of a campaign: each element's simple polymorphs and the user's `known`
    compounds. ValueError for a known compound with elements outside `elements`."""
    out: list[CandidateRecord] = []
    for el in elements:
        out.extend(elemental_polymorphs(el))
    for spec in known:
        rec = known_compound(spec)
        outside = {el.symbol for el in rec.structure.composition.elements} - set(elements)
        if outside:
            # The hull spans the campaign's elements only; a compound beyond them has no place.
            raise ValueError(
                f"known compound {spec!r} contains {', '.join(sorted(outside))}, which is not "
                f"in the chemical systems ({'-'.join(elements)})"
            )
        out.append(rec)
    return out
