"""A config with several problems names every one of them, each with `file:line:column`, the
dotted field path, what is allowed and, for a misspelled field, the name it probably meant."""

from __future__ import annotations

import textwrap

import pytest
import yaml
from conftest import toy_config, write_config

from discovery.config import ConfigError, load_config, parse_config


def _problems(path, text: str) -> list[str]:
    path.write_text(textwrap.dedent(text))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    return str(err.value).splitlines()


def test_six_problems_are_all_reported_with_their_places(tmp_path):
    path = tmp_path / "six.yaml"
    lines = _problems(
        path,
        """\
        name: six
        chemical_systems: [Cu-Au]
        rounds: 0
        model:
          kind: graph
          hidden: wide
        acquisition: {strategy: best}
        executor: {kind: pool, workers: 0}
        simulator: {name: emt, fmax: -1}
        """,
    )
    assert lines[0] == f"{path}: 6 problems"
    assert "more problem" not in "\n".join(lines)
    expected = [
        f"{path}:3:9: invalid value for 'rounds': Input should be greater than or equal to 1",
        f"{path}:5:9: invalid value for 'model.kind': Input should be 'crystal' or 'composition'",
        f"{path}:6:11: invalid value for 'model.hidden'",
        f"{path}:7:25: invalid value for 'acquisition.strategy': Input should be 'greedy', "
        "'lcb', 'thompson' or 'random' (got 'best')",
        f"{path}:8:33: invalid value for 'executor.workers'",
    ]
    for line, start in zip(lines[1:], expected, strict=False):
        assert line.strip().startswith(start), line
    assert "simulator.fmax" in lines[-1] and "greater than 0" in lines[-1]
    assert len(lines) == 7


def test_misspelled_fields_each_get_a_did_you_mean(tmp_path):
    path = tmp_path / "typos.yaml"
    lines = _problems(
        path,
        """\
        name: typos
        chemical_system: [Cu-Au]
        validaton_budget: 3
        model: {hiden: 8}
        """,
    )
    text = "\n".join(lines)
    assert lines[0] == f"{path}: 4 problems"
    assert f"{path}:2:1: unknown field 'chemical_system' (did you mean 'chemical_systems'?)" in text
    assert f"{path}:3:1: unknown field 'validaton_budget' (did you mean 'validation_budget'?)" in (
        text
    )
    assert f"{path}:4:9: unknown field 'model.hiden' (did you mean 'model.hidden'?)" in text
    assert "missing required field 'chemical_systems'" in text


def test_the_issue_example_reports_the_unknown_fields_too(tmp_path):
    # Before: only "missing required field 'name'".
    path = tmp_path / "c.yaml"
    text = "\n".join(_problems(path, "chemsys: [Cu-Au]\nnot_a_field: 1\n"))
    assert "missing required field 'name'" in text
    assert f"{path}:1:1: unknown field 'chemsys' (did you mean 'chemical_systems'?)" in text
    # No close name: what is allowed instead.
    assert f"{path}:2:1: unknown field 'not_a_field' (the fields of a campaign: name," in text


def test_broken_yaml_gives_line_and_column(tmp_path):
    path = tmp_path / "broken.yaml"
    (line,) = _problems(path, "name: x\nchemical_systems: [Cu-Au\n")
    assert line.startswith(f"{path}:3:1: not valid YAML: while parsing a flow sequence (line 2, ")
    (line,) = _problems(path, "name: x\n  bad: indent\n")
    assert line.startswith(f"{path}:2:6: not valid YAML")


def test_a_duplicated_key_is_an_error(tmp_path):
    data = toy_config()
    text = yaml.safe_dump(data, sort_keys=False) + "seed: 7\nmodel: {hidden: 16}\n"
    path = tmp_path / "dup.yaml"
    lines = _problems(path, text)
    assert lines[0] == f"{path}: 2 problems"
    assert "duplicate key 'seed' (first at line" in lines[1]
    assert "duplicate key 'model' (first at line" in lines[2]
    # Nested too, alone on one line.
    path.write_text("name: x\nchemical_systems: [Cu-Au]\nmodel:\n  hidden: 8\n  hidden: 9\n")
    with pytest.raises(ConfigError, match=rf"^{path}:5:3: duplicate key 'model.hidden'"):
        load_config(path)


def test_model_validators_of_several_sections_report_together():
    data = {
        **toy_config(),
        "model": {"kind": "composition", "volume_augmentation": [0.9, 1.1]},
        "executor": {"kind": "slurm", "address": "tcp://x:1"},
        "rounds": 0,
    }
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    lines = str(err.value).splitlines()
    assert lines[0] == "3 problems"
    text = "\n".join(lines)
    assert "'model': volume_augmentation needs kind: crystal" in text
    assert "'executor': kind slurm starts its own scheduler" in text
    assert "'rounds'" in text


def test_a_problem_in_an_included_file_names_that_file(tmp_path):
    write_config(tmp_path / "model.yaml", {"model": {"hidden": "wide"}})
    data = {**toy_config(), "include": ["model.yaml"]}
    data.pop("model")
    path = write_config(tmp_path / "c.yaml", data)
    with pytest.raises(ConfigError, match=rf"^{tmp_path / 'model.yaml'}:2:11: .*'model.hidden'"):
        load_config(path)


def test_a_huge_value_is_not_echoed_whole():
    with pytest.raises(ConfigError) as err:
        parse_config({**toy_config(), "seed": "x" * 100_000})
    assert len(str(err.value)) < 300 and "characters)" in str(err.value)
