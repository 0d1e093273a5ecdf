"""The shortlist's files: a CIF carries the space group the shortlist lists for it, and an
export never overwrites a file unless told to."""

from __future__ import annotations

import io
import zipfile

import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifParser

from discovery.domain.records import CandidateRecord
from discovery.engine.shortlist import cif_text, render_export, shortlist, write_export
from discovery.store import Campaign, Database, HullResult, ReviewItem
from discovery.store.convert import calculation_row, candidate_row
from simulators import RelaxResult

CRYSTALS = {
    "rocksalt": (Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.6), ["Na", "Cl"],
                                           [[0, 0, 0], [0.5, 0.5, 0.5]]), 225),
    "cscl": (Structure(Lattice.cubic(3.0), ["Cu", "Au"], [[0, 0, 0], [0.5, 0.5, 0.5]]), 221),
    "rutile": (Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(4.6, 3.0), ["Ti", "O"],
                                         [[0, 0, 0], [0.305, 0.305, 0]]), 136),
    "wurtzite": (Structure.from_spacegroup("P6_3mc", Lattice.hexagonal(3.25, 5.2), ["Zn", "O"],
                                           [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]]), 186),
}  # fmt: skip


def _number(cif: str) -> int:
    block = CifParser(io.StringIO(cif)).as_dict()
    (data,) = block.values()
    return int(data.get("_symmetry_Int_Tables_number") or data["_space_group_IT_number"])


@pytest.fixture
def db(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'store.db'}")
    with db.session() as s:
        s.add(Campaign(name="t", config_yaml=""))
        s.flush()
        for rank, (name, (crystal, _)) in enumerate(CRYSTALS.items()):
            cand = candidate_row(CandidateRecord(crystal, "random"), 1, name, 0, False)
            s.add(cand)
            s.flush()
            result = RelaxResult("emt", crystal, -4.0 * len(crystal), -4.0, 0.01, None, True, 5, 1)
            s.add(calculation_row(cand, result, "emt", 0))
            s.add(HullResult(candidate_id=cand.id, fidelity="emt", round_index=0,
                             e_form_per_atom=-0.1, e_above_hull=0.0, stable=True))  # fmt: skip
            s.add(ReviewItem(candidate_id=cand.id, round_index=0, rank=rank))
    yield db
    db.dispose()


def test_cif_files_carry_the_listed_space_group(db):
    items = shortlist(db, 1, "emt")
    assert {row["id"]: row["spacegroup"] for row, _ in items} == {
        name: number for name, (_, number) in CRYSTALS.items()
    }
    with zipfile.ZipFile(io.BytesIO(render_export(items, "cif"))) as zf:
        for row, structure in items:
            cif = zf.read(f"{row['id']}_{row['reduced_formula']}.cif").decode()
            assert _number(cif) == row["spacegroup"], row["id"]
            assert _number(cif_text(structure)) == row["spacegroup"]
            back = CifParser(io.StringIO(cif)).parse_structures(primitive=False)[0]
            assert back.composition.reduced_formula == structure.composition.reduced_formula
            assert abs(back.volume / len(back) - structure.volume / len(structure)) < 1e-3


def test_a_cell_without_symmetry_is_written_in_p1():
    lattice = Lattice.from_parameters(4.1, 4.7, 5.3, 81, 97, 104)
    crystal = Structure(
        lattice, ["Cu", "Au", "Pd"], [[0, 0, 0], [0.31, 0.47, 0.13], [0.7, 0.2, 0.6]]
    )
    assert _number(cif_text(crystal)) == 1


def test_an_export_never_overwrites_a_file_unless_forced(db, tmp_path):
    items = shortlist(db, 1, "emt")
    out = tmp_path / "shortlist.csv"
    out.write_text("precious")
    with pytest.raises(FileExistsError):
        write_export(items, "csv", out)
    assert out.read_text() == "precious"
    write_export(items, "csv", out, force=True)
    assert out.read_text().startswith("id,formula")
    fresh = tmp_path / "new" / "shortlist.json"
    assert write_export(items, "json", fresh) == fresh and fresh.is_file()
