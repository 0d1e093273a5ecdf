"""Config validation: bad input fails before any work; a single problem is one line naming it."""

from __future__ import annotations

import pytest
from conftest import REPO, cli, toy_config, write_config

from discovery.config import CampaignConfig, ConfigError, load_config, parse_config


@pytest.mark.parametrize("name", ["quickstart.yaml", "toy-emt.yaml"])
def test_shipped_campaigns_are_valid(name):
    config = load_config(REPO / "campaigns" / name)
    assert config.rounds >= 1 and config.chemical_systems


def test_defaults_follow_gnome():
    config = CampaignConfig(name="x", chemical_systems=["O-Li-Mn"])
    assert config.stability_threshold == 0.05
    assert config.generation.substitution.threshold == 0.001
    assert config.chemical_systems == ["Li-Mn-O"]
    assert config.elements == ("Li", "Mn", "O")


@pytest.mark.parametrize(
    "patch, expected",
    [
        ({"colour": "blue"}, "unknown field 'colour'"),
        ({"model": {"widht": 3}}, "unknown field 'model.widht'"),
        ({"chemical_systems": ["Cu-Xx"]}, "unknown element 'Xx'"),
        ({"validation_budget": -1}, "'validation_budget'"),
        ({"generation": {"random": {"budget": -5}}}, "'generation.random.budget'"),
        ({"acquisition": {"strategy": "best"}}, "'greedy', 'lcb', 'thompson' or 'random'"),
        ({"simulator": {"name": "vasp"}}, "'simulator.name'"),
        ({"generation": {"random": {"space_groups": [10, 300]}}}, "1 <= low <= high <= 230"),
    ],
)
def test_bad_values_name_the_field(patch, expected):
    data = toy_config()
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_negative_budget_message_says_what_is_allowed():
    data = {**toy_config(), "validation_budget": -1}
    with pytest.raises(ConfigError, match="greater than or equal to 1"):
        parse_config(data)


@pytest.mark.parametrize(
    "patch",
    [
        {"unknown_field": 1},
        {"chemical_systems": ["Cu-Qq"]},
        {"validation_budget": -3},
        {"references": {"known": ["no-such-prototype:Cu,Au"]}},
    ],
    ids=["unknown-field", "unknown-element", "negative-budget", "unknown-prototype"],
)
def test_cli_rejects_bad_config_and_creates_nothing(tmp_path, patch):
    config = write_config(tmp_path / "bad.yaml", {**toy_config(), **patch})
    target = tmp_path / "campaign"
    result = cli("run", config, "--dir", target)
    assert result.returncode != 0
    lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    assert not target.exists()


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)


def test_known_structure_files_are_relative_to_the_config(tmp_path):
    from pymatgen.core import Lattice, Structure

    (tmp_path / "sub").mkdir()
    Structure(Lattice.cubic(3.7), ["Cu", "Au"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(
        filename=str(tmp_path / "sub" / "cuau.cif")
    )
    data = {**toy_config(), "references": {"known": ["sub/cuau.cif", "L1_0-CuAu:Cu,Au"]}}
    config = load_config(write_config(tmp_path / "c.yaml", data))
    assert config.references.known[0] == str((tmp_path / "sub" / "cuau.cif").resolve())
    assert config.references.known[1] == "L1_0-CuAu:Cu,Au"
