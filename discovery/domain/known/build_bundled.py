"""Build the shipped Li–Mn–O known-phase set, `discovery/data/known/li-mn-o.json.gz`.

Run from the repository root::

    python -m discovery.domain.known.build_bundled [--shared ../shared/data] [--out PATH]

Sources, in order of preference:

- Materials Project entries with structures and MP2020-corrected energies
  (`mp/Mn-O_entries.json`: mp-19006 MnO, mp-19395 MnO2, mp-18759 Mn3O4, mp-35 Mn,
  mp-12957 O2, mp-1172875 Mn2O3), kept exactly as they are, energies included.
- Structure files without energies: pymatgen's Li2O and Li2O2, the MP structure of
  orthorhombic LiMnO2 (mp-18767) from CHGNet's examples.
- Structures built here from published lattice parameters and Wyckoff positions: bcc Li,
  monoclinic LiMnO2, spinel LiMn2O4, Li2MnO3, an ordered cell of spinel Li4Mn5O12 and
  beta-MnO2. These carry no energy: no public energy belongs to these exact geometries.

Every structure is checked (interatomic distances, density, formula) before it is written;
the builder fails loudly rather than ship a broken phase. The output is deterministic.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

REPO = Path(__file__).resolve().parents[3]
DEFAULT_SHARED = REPO.parent / "shared" / "data"
DEFAULT_OUT = REPO / "discovery" / "data" / "known" / "li-mn-o.json.gz"
SYMPREC = 0.1

MP_LICENCE = "MP data CC-BY-4.0"
LITERATURE_LICENCE = "literature; structure built here (facts are not copyrightable)"

# The six MP Mn–O entries in the shared data, each with the formula it must have.
MP_MN_O = {
    "mp-19006": "MnO",
    "mp-19395": "MnO2",
    "mp-18759": "Mn3O4",
    "mp-35": "Mn",
    "mp-12957": "O2",
    "mp-1172875": "Mn2O3",
}


@dataclass(frozen=True)
class Built:
    """One phase as the builder produced it, before checks and serialisation."""

    id: str
    formula: str  # the reduced formula it must have
    structure: Structure
    origin: str
    licence: str
    energy_per_atom: float | None = None
    note: str = ""


# --------------------------------------------------------------------------- sources


def mp_mn_o_entries(shared: Path) -> list[Built]:
    """The six MP Mn–O entries with their structures and MP2020-corrected energies."""
    from pymatgen.entries.computed_entries import ComputedStructureEntry

    path = shared / "mp" / "Mn-O_entries.json"
    raw = json.loads(path.read_text())
    out = []
    for d in raw:
        entry = ComputedStructureEntry.from_dict(d)
        entry_id = str(entry.entry_id)
        if entry_id not in MP_MN_O:
            raise ValueError(f"{path}: unexpected entry {entry_id}")
        out.append(
            Built(
                id=entry_id,
                formula=MP_MN_O[entry_id],
                structure=entry.structure,
                origin=(
                    f"shared/data/mp/Mn-O_entries.json ({entry_id}; copied from pymatgen "
                    "tests/files/entries/Mn-O_entries.json @ 7a14b49); MP structure and "
                    f"MP2020-corrected {entry.parameters.get('run_type', 'GGA(+U)')} energy"
                ),
                licence=f"{MP_LICENCE}; file pymatgen MIT",
                energy_per_atom=float(entry.energy_per_atom),
            )
        )
    missing = set(MP_MN_O) - {b.id for b in out}
    if missing:
        raise ValueError(f"{path}: missing entries {sorted(missing)}")
    return out


def structure_files(shared: Path) -> list[Built]:
    """Li2O and Li2O2 from pymatgen's bundled structures; orthorhombic LiMnO2 (mp-18767)."""
    root = shared / "structures"
    pymatgen_note = (
        "pymatgen-core 2026.10.16 pymatgen/util/structures/{name}.json, via "
        "shared/data/structures/pymatgen/{name}.json; oxidation states stripped"
    )
    return [
        Built(
            id="pymatgen-Li2O",
            formula="Li2O",
            structure=Structure.from_file(root / "pymatgen" / "Li2O.json"),
            origin=pymatgen_note.format(name="Li2O") + " (antifluorite, Fm-3m)",
            licence="pymatgen MIT",
        ),
        Built(
            id="pymatgen-Li2O2",
            formula="Li2O2",
            structure=Structure.from_file(root / "pymatgen" / "Li2O2.json"),
            origin=pymatgen_note.format(name="Li2O2") + " (P6_3/mmc, peroxide O–O kept)",
            licence="pymatgen MIT",
        ),
        Built(
            id="mp-18767",
            formula="LiMnO2",
            structure=Structure.from_file(root / "chgnet" / "mp-18767-LiMnO2.cif"),
            origin=(
                "shared/data/structures/chgnet/mp-18767-LiMnO2.cif (CederGroupHub/chgnet @ "
                "48a6bad examples/); MP structure of orthorhombic LiMnO2, no energy shipped"
            ),
            licence=f"{MP_LICENCE}; file CHGNet BSD-style licence",
        ),
    ]


def _from_spacegroup(
    symbol: str,
    lattice: Lattice,
    species: Sequence[Any],
    coords: Sequence[Sequence[float]],
) -> Structure:
    return Structure.from_spacegroup(symbol, lattice, list(species), [list(c) for c in coords])


def lithium_bcc() -> Built:
    """Bcc Li (Im-3m, 2a), a = 3.509 Å at room temperature."""
    s = _from_spacegroup("Im-3m", Lattice.cubic(3.509), ["Li"], [[0, 0, 0]])
    return Built(
        id="lit-Li-bcc",
        formula="Li",
        structure=s.get_primitive_structure(),
        origin=(
            "literature: bcc Li, Im-3m, a = 3.509 Å at room temperature (R. W. G. Wyckoff, "
            "Crystal Structures, vol. 1, 1963), Li on 2a. MP's Li ground state (mp-1018134, "
            "a 3-atom rhombohedral close-packed cell) is a different polymorph; its energy "
            "is therefore not attached"
        ),
        licence=LITERATURE_LICENCE,
        note="not MP's Li ground state (mp-1018134)",
    )


def limno2_monoclinic() -> Built:
    """Layered monoclinic LiMnO2 (C2/m, alpha-NaFeO2-derived, cooperative Jahn-Teller)."""
    lattice = Lattice.monoclinic(5.4387, 2.80857, 5.3878, 115.90)
    s = _from_spacegroup(
        "C2/m",
        lattice,
        ["Mn", "Li", "O"],
        [[0, 0, 0], [0, 0.5, 0.5], [0.2723, 0, 0.7706]],
    )
    return Built(
        id="lit-LiMnO2-C2m",
        formula="LiMnO2",
        structure=s.get_primitive_structure(),
        origin=(
            "literature: A. R. Armstrong & P. G. Bruce, Nature 381, 499 (1996); C2/m, "
            "a = 5.4387, b = 2.80857, c = 5.3878 Å, beta = 115.90°; Mn 2a (0,0,0), "
            "Li 2d (0,1/2,1/2), O 4i (0.2723, 0, 0.7706)"
        ),
        licence=LITERATURE_LICENCE,
    )


def _spinel(a: float, x_o: float, b_site: Any) -> Structure:
    """AB2O4 spinel, Fd-3m origin choice 2: Li 8a (1/8,1/8,1/8), B 16d (1/2,1/2,1/2),
    O 32e (x,x,x)."""
    return _from_spacegroup(
        "Fd-3m:2",  # plain "Fd-3m" is origin choice 1 in pymatgen
        Lattice.cubic(a),
        ["Li", b_site, "O"],
        [[0.125, 0.125, 0.125], [0.5, 0.5, 0.5], [x_o, x_o, x_o]],
    )


def limn2o4_spinel() -> Built:
    """Cubic spinel LiMn2O4 (Fd-3m), primitive cell of 14 atoms."""
    s = _spinel(8.245, 0.2630, "Mn")
    return Built(
        id="lit-LiMn2O4-spinel",
        formula="LiMn2O4",
        structure=s.get_primitive_structure(),
        origin=(
            "literature: cubic spinel LiMn2O4, Fd-3m (origin choice 2), a = 8.245 Å "
            "(e.g. M. M. Thackeray et al., Mater. Res. Bull. 19, 179 (1984); reported "
            "8.23–8.25 Å); Li 8a, Mn 16d, O 32e x = 0.263; primitive cell"
        ),
        licence=LITERATURE_LICENCE,
    )


def li2mno3() -> Built:
    """Li2MnO3 (C2/m), the honeycomb-ordered layered rock salt."""
    lattice = Lattice.monoclinic(4.937, 8.532, 5.030, 109.46)
    s = _from_spacegroup(
        "C2/m",
        lattice,
        ["Mn", "Li", "Li", "Li", "O", "O"],
        [
            [0, 0.1670, 0],  # Mn 4g
            [0, 0.5, 0],  # Li1 2b
            [0, 0, 0.5],  # Li2 2c
            [0, 0.6606, 0.5],  # Li3 4h
            [0.2189, 0, 0.2273],  # O1 4i
            [0.2540, 0.3212, 0.2234],  # O2 8j
        ],
    )
    return Built(
        id="lit-Li2MnO3",
        formula="Li2MnO3",
        structure=s.get_primitive_structure(),
        origin=(
            "literature: P. Strobel & B. Lambert-Andron, J. Solid State Chem. 75, 90 (1988); "
            "C2/m, a = 4.937, b = 8.532, c = 5.030 Å, beta = 109.46°; Mn 4g (0,0.1670,0), "
            "Li 2b (0,1/2,0), Li 2c (0,0,1/2), Li 4h (0,0.6606,1/2), O 4i (0.2189,0,0.2273), "
            "O 8j (0.2540,0.3212,0.2234); primitive cell"
        ),
        licence=LITERATURE_LICENCE,
    )


def beta_mno2() -> Built:
    """Beta-MnO2, pyrolusite (rutile type, P4_2/mnm)."""
    s = _from_spacegroup(
        "P4_2/mnm",
        Lattice.tetragonal(4.3983, 2.8730),
        ["Mn", "O"],
        [[0, 0, 0], [0.3047, 0.3047, 0]],
    )
    return Built(
        id="lit-MnO2-beta",
        formula="MnO2",
        structure=s,
        origin=(
            "literature: beta-MnO2 (pyrolusite), rutile type P4_2/mnm, a = 4.3983, "
            "c = 2.8730 Å; Mn 2a (0,0,0), O 4f (x,x,0) x = 0.3047 (A. A. Bolzan et al., "
            "Aust. J. Chem. 46, 939 (1993)). MP's MnO2 entry here (mp-19395) is I4/m"
        ),
        licence=LITERATURE_LICENCE,
        note="polymorph; the MP entry mp-19395 is a different (I4/m) structure",
    )


def li4mn5o12_ordered() -> Built:
    """Spinel Li4Mn5O12 = Li[Li1/3Mn5/3]O4 with the 16d site ordered.

    The disordered spinel (16d: 1/6 Li, 5/6 Mn4+) is ordered in every three-fold supercell of
    the 14-atom primitive cell (42 sites, 12 16d sites holding 2 Li and 10 Mn) by pymatgen's
    OrderDisorderedStructureTransformation (Ewald energy with Li+, Mn4+, O2-); the lowest
    Ewald energy over all supercells wins, the first one found on a tie.
    """
    from pymatgen.transformations.standard_transformations import (
        OrderDisorderedStructureTransformation,
    )

    primitive = _spinel(8.16, 0.2625, {"Li": 1 / 6, "Mn": 5 / 6}).get_primitive_structure()
    primitive.add_oxidation_state_by_element({"Li": 1, "Mn": 4, "O": -2})
    best: tuple[float, Structure] | None = None
    for matrix in _hermite_normal_forms(3):
        supercell = primitive.copy()
        supercell.make_supercell(matrix)
        ranked = cast(
            list[dict[str, Any]],
            OrderDisorderedStructureTransformation(algo=0).apply_transformation(
                supercell, return_ranked_list=1
            ),
        )
        energy = float(ranked[0]["energy"]) / len(supercell)
        if best is None or energy < best[0] - 1e-8:
            best = (energy, ranked[0]["structure"])
    assert best is not None
    ordered = best[1].copy()
    ordered.remove_oxidation_states()
    ordered = ordered.get_reduced_structure()
    return Built(
        id="lit-Li4Mn5O12-ordered",
        formula="Li4Mn5O12",
        structure=ordered,
        origin=(
            "literature: spinel Li4Mn5O12 = Li[Li1/3Mn5/3]O4, Fd-3m with 16d shared by "
            "Li 1/6 and Mn 5/6, a = 8.16 Å, O 32e x = 0.2625 (M. M. Thackeray et al., "
            "J. Electrochem. Soc. 139, 363 (1992); reported a = 8.14–8.16 Å). The 16d "
            "occupancy is ordered here in a 42-site cell (three primitive cells, every "
            "three-fold supercell tried) by the lowest Ewald energy (Li+, Mn4+, O2-) with "
            "pymatgen's OrderDisorderedStructureTransformation: a model ordering, not a "
            "refined structure"
        ),
        licence=LITERATURE_LICENCE,
        note="model ordering of the disordered 16d site",
    )


def _hermite_normal_forms(det: int) -> list[list[list[int]]]:
    """Every lower-triangular Hermite normal form of determinant `det` (the distinct
    supercells of that size)."""
    out = []
    for a in range(1, det + 1):
        if det % a:
            continue
        for c in range(1, det // a + 1):
            if (det // a) % c:
                continue
            f = det // a // c
            for b in range(c):
                for d in range(f):
                    for e in range(f):
                        out.append([[a, 0, 0], [b, c, 0], [d, e, f]])
    return out


# --------------------------------------------------------------------------- checks


def min_distances(structure: Structure) -> dict[tuple[str, str], float]:
    """The shortest distance between each pair of element symbols (periodic images
    included)."""
    dm = structure.distance_matrix.copy()
    # a site's distance to its own periodic images: the shortest lattice vector
    self_image = float(min(structure.lattice.abc))
    np.fill_diagonal(dm, self_image)
    symbols = [site.specie.symbol for site in structure]
    out: dict[tuple[str, str], float] = {}
    for i, si in enumerate(symbols):
        for j, sj in enumerate(symbols):
            key = tuple(sorted((si, sj)))
            pair = (key[0], key[1])
            out[pair] = min(out.get(pair, np.inf), float(dm[i, j]))
    return out


def check(built: Built) -> None:
    """Fail unless the structure is ordered, has the right formula, no atoms closer than
    1.0 Å (O–O at least 1.2 Å, for O2 and peroxides) and a density of 0.3–10 g/cm3."""
    s = built.structure
    if not s.is_ordered:
        raise ValueError(f"{built.id}: structure is disordered")
    if s.composition.reduced_formula != built.formula:
        raise ValueError(f"{built.id}: formula {s.composition.reduced_formula} != {built.formula}")
    for pair, d in min_distances(s).items():
        floor = 1.2 if pair == ("O", "O") else 1.0
        if d < floor:
            raise ValueError(f"{built.id}: {pair[0]}–{pair[1]} distance {d:.3f} Å < {floor}")
    if not 0.3 <= s.density <= 10.0:
        raise ValueError(f"{built.id}: density {s.density:.2f} g/cm3 is implausible")


def spacegroup(structure: Structure) -> tuple[int, str]:
    """Space-group number and symbol at symprec 0.1 (pymatgen's SpacegroupAnalyzer)."""
    analyzer = SpacegroupAnalyzer(structure, symprec=SYMPREC)
    return analyzer.get_space_group_number(), analyzer.get_space_group_symbol()


# --------------------------------------------------------------------------- output

BUILDERS: tuple[Callable[[], Built], ...] = (
    lithium_bcc,
    beta_mno2,
    limno2_monoclinic,
    limn2o4_spinel,
    li2mno3,
    li4mn5o12_ordered,
)


def build(shared: Path) -> list[dict[str, Any]]:
    """Every phase as a JSON-ready record, checked, in a stable order (by formula, then id)."""
    phases = [*mp_mn_o_entries(shared), *structure_files(shared), *(b() for b in BUILDERS)]
    records = []
    for built in phases:
        structure = built.structure.copy()
        structure.remove_oxidation_states()
        for prop in list(structure.site_properties):  # forces, coordination numbers
            structure.remove_site_property(prop)
        built = replace(built, structure=structure)
        check(built)
        number, symbol = spacegroup(structure)
        record: dict[str, Any] = {
            "id": built.id,
            "source": "bundled",
            "formula": built.formula,
            "spacegroup": number,
            "spacegroup_symbol": symbol,
            "nsites": len(structure),
            "structure": structure.as_dict(),
            "energy_per_atom": built.energy_per_atom,
            "energy_scheme": "mp2020" if built.energy_per_atom is not None else None,
            "origin": built.origin,
            "licence": built.licence,
        }
        if built.note:
            record["note"] = built.note
        records.append(record)
    ids = [r["id"] for r in records]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate ids: {ids}")
    return sorted(records, key=lambda r: (r["formula"], r["id"]))


def write(records: list[dict[str, Any]], out: Path) -> None:
    """Write the records as gzipped JSON with a fixed gzip timestamp (byte-reproducible)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(records, indent=None, sort_keys=True).encode()
    with out.open("wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
        gz.write(payload)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: build the set from `--shared` and write it to `--out`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="shared data dir")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .json.gz")
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen CIF and symmetry chatter
        records = build(args.shared)
    write(records, args.out)
    for r in records:
        energy = "yes" if r["energy_per_atom"] is not None else "no"
        sys.stdout.write(
            f"{r['id']:24s} {r['formula']:10s} {r['spacegroup_symbol']:10s} "
            f"{r['spacegroup']:4d} {r['nsites']:3d} sites  energy: {energy}\n"
        )
    sys.stdout.write(f"{len(records)} phases -> {args.out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
