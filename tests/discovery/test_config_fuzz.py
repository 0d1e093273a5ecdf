"""Property-based checks of the config loader: any input loads or fails with a ConfigError
whose message names each problem on a line of its own; never another exception."""

from __future__ import annotations

import copy
import os

import yaml
from conftest import toy_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from discovery.config import CampaignConfig, ConfigError, load_config

# Plain YAML values: what a person can type into a config file.
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=10,
)
PROPERTY = settings(
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _load_text(tmp_path, text: str):
    path = tmp_path / "campaign.yaml"
    path.write_text(text)
    try:
        return load_config(path)
    except ConfigError as err:
        message = str(err)
        lines = message.splitlines()
        assert lines and all(line.strip() and line.isprintable() for line in lines), message
        if len(lines) > 1:  # "FILE: N problems", then one line each
            assert lines[0] == f"{path}: {len(lines) - 1} problems", message
        assert "Traceback" not in message
        return None


@PROPERTY
@given(text=st.text(max_size=300))
def test_any_text_loads_or_fails_clearly(tmp_path, text):
    result = _load_text(tmp_path, text)
    assert result is None or isinstance(result, CampaignConfig)


def _paths(data, prefix=()):
    """Every key path of a nested dict."""
    for key, value in data.items():
        yield (*prefix, key)
        if isinstance(value, dict):
            yield from _paths(value, (*prefix, key))


@st.composite
def mutated_configs(draw):
    data = copy.deepcopy(toy_config())
    paths = list(_paths(data))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        parent = data
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(parent, dict):
            continue
        if draw(st.booleans()):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = draw(VALUES)
    if draw(st.booleans()):
        data[draw(st.text(min_size=1, max_size=8))] = draw(VALUES)
    return data


@PROPERTY
@given(data=mutated_configs())
def test_mutated_configs_load_or_name_the_field(tmp_path, data):
    result = _load_text(tmp_path, yaml.safe_dump(data))
    assert result is None or isinstance(result, CampaignConfig)


def test_a_bad_field_is_named_in_the_message(tmp_path):
    data = toy_config()
    data["model"]["hidden"] = "wide"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    try:
        load_config(path)
    except ConfigError as err:
        assert "model.hidden" in str(err)
    else:
        raise AssertionError("a text hidden size was accepted")
