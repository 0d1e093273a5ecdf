"""Bad structure files: each problem gets its own message naming the file; any bytes either
load or fail that way, never with another exception."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymatgen.core import Lattice, Structure

from discovery.domain.generation.structure_checks import structure_problem
from discovery.domain.generation.user_structures import (
    StructureFileError,
    _load_file,
    load_structures,
)

NACL = Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def write_json(path, structure_dict) -> str:
    path.write_text(json.dumps(structure_dict))
    return str(path)


def test_a_good_file_loads(tmp_path):
    NACL.to(filename=str(tmp_path / "NaCl.cif"))
    ((name, structure),) = load_structures([str(tmp_path / "NaCl.cif")])
    assert name == "NaCl.cif" and structure.composition.reduced_formula == "NaCl"


def test_truncated_cif_names_the_file(tmp_path):
    text = NACL.to(fmt="cif")
    (tmp_path / "cut.cif").write_text(text[: len(text) // 3])
    with pytest.raises(StructureFileError, match=r"cut\.cif: "):
        load_structures([str(tmp_path / "cut.cif")])


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda: Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0, 0, 0.01]]), "overlap"),
        (lambda: Structure(Lattice.cubic(4.0), ["Na"], [[np.nan, 0, 0]]), "non-finite"),
        (
            lambda: Structure(
                Lattice([[4, 0, 0], [0, 4, 0], [0, 0, 1e-4]]),
                ["Na", "Cl"],
                [[0, 0, 0], [0.5, 0.5, 0]],
            ),
            "degenerate",
        ),
        (lambda: NACL * (18, 18, 16), "10368 sites; at most 2000"),
    ],
    ids=["overlapping atoms", "NaN coordinates", "zero volume", "10,000-atom cell"],
)
def test_each_physical_problem_has_its_own_message(tmp_path, make, expected):
    structure = make()
    assert expected in structure_problem(structure)
    path = write_json(tmp_path / "bad.json", structure.as_dict())
    with pytest.raises(StructureFileError, match=rf"bad\.json: .*{expected}"):
        load_structures([path])


def test_unknown_element_names_it(tmp_path):
    text = NACL.to(fmt="poscar").replace("Na Cl", "Xq Cl")
    (tmp_path / "POSCAR").write_text(text)
    with pytest.raises(StructureFileError, match=r"POSCAR: .*Xq"):
        load_structures([str(tmp_path / "POSCAR")])


@settings(
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    payload=st.binary(max_size=400),
    suffix=st.sampled_from([".cif", ".json", ".vasp", ".extxyz"]),
)
def test_any_bytes_load_or_fail_naming_the_file(tmp_path_factory, payload, suffix):
    path = tmp_path_factory.mktemp("fuzz") / f"input{suffix}"
    path.write_bytes(payload)
    _load_file.cache_clear()
    try:
        load_structures([str(path)])
    except StructureFileError as err:
        assert str(path) in str(err)
