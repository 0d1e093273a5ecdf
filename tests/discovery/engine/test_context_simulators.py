"""The `simulator` config section: names, import paths, limits, and how they reach a Simulator."""

from __future__ import annotations

import pytest
from conftest import toy_config

from discovery.config import ConfigError, parse_config
from discovery.engine.campaign_directory import CampaignDirectory
from discovery.engine.context import CampaignContext


def with_simulator(**simulator) -> dict:
    data = toy_config()
    data["simulator"] = {**data.get("simulator", {}), **simulator}
    return data


def test_missing_import_path_fails_at_load_naming_it():
    with pytest.raises(ConfigError) as err:
        parse_config(with_simulator(name="no_such_pkg_xyz.calcs:factory"))
    message = str(err.value)
    assert "'simulator.name'" in message
    assert "no_such_pkg_xyz.calcs:factory" in message


def test_existing_import_path_and_sevennet_load():
    assert parse_config(with_simulator(name="ase.calculators.emt:EMT")).simulator.name
    assert parse_config(with_simulator(name="sevennet")).simulator.name == "sevennet"


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"name": "emt", "batched": True}, "batched: true needs 'chgnet' or 'sevennet'"),
        ({"max_seconds": 0}, "'simulator.max_seconds'"),
        ({"max_volume_ratio": 1.0}, "'simulator.max_volume_ratio'"),
        ({"batch_size": 0}, "'simulator.batch_size'"),
        ({"min_distance": -1}, "'simulator.min_distance'"),
    ],
)
def test_bad_simulator_values_name_the_field(patch, expected):
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(")):
        parse_config(with_simulator(**patch))


def test_settings_reach_the_validate_stage_simulator(tmp_path):
    config = parse_config(
        with_simulator(
            name="sevennet",
            max_seconds=120,
            min_distance=0.7,
            max_volume_ratio=2.5,
            min_energy_per_atom=-20,
            spin_polarized=False,
            batched=True,
            batch_size=16,
        )
    )
    ctx = CampaignContext(config, CampaignDirectory(tmp_path), None, 0, tracker=None, progress=None)
    settings = ctx.simulator.settings
    assert ctx.simulator.name == "sevennet" and ctx.simulator.can_batch
    assert (settings.max_seconds, settings.min_distance, settings.max_volume_ratio) == (
        120,
        0.7,
        2.5,
    )
    assert settings.min_energy_per_atom == -20 and settings.spin_polarized is False
    assert ctx.simulator_for(0, relax_cell=False).settings.relax_cell is False
    assert ctx.simulator_for(0, relax_cell=False).settings.max_seconds == 120
