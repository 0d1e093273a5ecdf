"""`discovery pretrain`: a config that cannot be used is refused before anything is created,
each problem named by its field and place."""

from __future__ import annotations

from conftest import cli, write_config

from discovery.config import ConfigError, parse_pretrain_config

BASE = {"name": "tiny", "chemical_systems": ["Cu-Au"], "teacher": {"name": "emt"}}


def test_a_bad_pretrain_config_is_refused_naming_the_field(tmp_path):
    config = write_config(
        tmp_path / "bad.yaml", {**BASE, "labels": {"relax_fracton": 0.5, "correction": "cubic"}}
    )
    result = cli("pretrain", config, "--out", tmp_path / "out", timeout=120)
    assert result.returncode == 2
    text = " ".join(result.stderr.split())
    assert "unknown field 'labels.relax_fracton' (did you mean 'labels.relax_fraction'?)" in text
    assert "invalid value for 'labels.correction'" in text
    assert "bad.yaml:" in text
    assert not (tmp_path / "out").exists()


def test_pretrain_config_checks_teacher_elements_and_init():
    for data, field in [
        ({**BASE, "chemical_systems": ["Li-O"]}, "'teacher'"),
        ({**BASE, "model": {"init": "x.pt"}}, "'model'"),
        ({**BASE, "chemical_systems": ["Cu-Au", "Au-Cu"]}, "'chemical_systems'"),
        ({**BASE, "name": "no spaces"}, "'name'"),
    ]:
        try:
            parse_pretrain_config(data)
        except ConfigError as err:
            assert field in str(err), str(err)
        else:
            raise AssertionError(f"accepted {data}")
    assert parse_pretrain_config(BASE).label == "tiny-v1"
