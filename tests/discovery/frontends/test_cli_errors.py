"""User mistakes on the command line end with exit code 2 and a clear `error:` message, never
a traceback, and leave nothing behind: bad configs and directories, an unwritable --out, a busy
port. The property at the end throws generated arguments at every command."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import yaml
from conftest import toy_config, write_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from discovery.config import parse_config
from discovery.engine.campaign_directory import CampaignDirectory
from discovery.frontends.cli import app

runner = CliRunner()


def invoke(*args) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout + result.stderr


def assert_clear_failure(code: int, output: str) -> None:
    assert code == 2, output
    assert "Traceback" not in output
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert lines and (lines[0].startswith("error: ") or "Usage:" in output), output


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.fixture
def started(tmp_path) -> Path:
    """A campaign directory whose store exists (no rounds run)."""
    location = CampaignDirectory(tmp_path / "camp")
    cfg = parse_config(toy_config())
    location.prepare(cfg)
    location.open(cfg, read_only=False).db.dispose()
    return location.path


@pytest.fixture
def busy_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_a_dir_under_a_file_fails_before_anything_is_created(tmp_path):
    config = write_config(tmp_path / "c.yaml", toy_config())
    (tmp_path / "a-file").write_text("")
    before = files_under(tmp_path)
    for command in ("run", "validate"):
        code, output = invoke(command, config, "--dir", tmp_path / "a-file" / "run")
        assert_clear_failure(code, output)
        assert "a-file is not a directory" in output
    assert files_under(tmp_path) == before


def test_unopenable_store_and_tracking_paths_are_named_by_validate_and_run(tmp_path):
    data = {
        **toy_config(),
        "store": {"url": f"sqlite:///{tmp_path}/no/such/dir/c.db"},
        "tracking": {"uri": f"sqlite:///{tmp_path}/a-file/m.db"},
    }
    (tmp_path / "a-file").write_text("")
    config = write_config(tmp_path / "c.yaml", data)
    before = files_under(tmp_path)
    for args in (("validate", config), ("run", config, "--dir", tmp_path / "run")):
        code, output = invoke(*args)
        assert_clear_failure(code, output)
        assert "2 problems" in output
        assert "'store.url'" in output and "'tracking.uri'" in output
    assert files_under(tmp_path) == before


def test_a_changed_config_names_the_differing_fields(started, tmp_path):
    config = write_config(tmp_path / "c.yaml", {**toy_config(), "seed": 3})
    before = files_under(started)
    for args in (("validate", config, "--dir", started), ("run", config, "--dir", started)):
        code, output = invoke(*args)
        assert_clear_failure(code, output)
        assert "holds a different campaign" in output and "seed: 0 -> 3" in output
    assert files_under(started) == before
    code, output = invoke("validate", write_config(tmp_path / "same.yaml", toy_config()),
                          "--dir", started)  # fmt: skip
    assert code == 0 and "ready" in output


def test_export_to_a_directory_or_a_missing_folder_is_refused(started, tmp_path):
    for target, expected in (
        (tmp_path, "is a directory"),
        (tmp_path / "missing" / "x.csv", "does not exist"),
    ):
        before = files_under(tmp_path)
        code, output = invoke("export", started, "--out", target)
        assert_clear_failure(code, output)
        assert expected in output
        assert files_under(tmp_path) == before


@pytest.mark.parametrize("command", ["ui", "serve"])
def test_a_busy_port_fails_before_printing_the_url_or_token(started, busy_port, command):
    token = ["--token", "secret-token"] if command == "serve" else []
    code, output = invoke(command, started, "--port", busy_port, *token)
    assert_clear_failure(code, output)
    assert f"cannot listen on 127.0.0.1:{busy_port}" in output
    assert "http://" not in output and "secret-token" not in output


# --- Generated arguments ------------------------------------------------------------------------

PROPERTY = settings(
    max_examples=int(os.environ.get("HYPOTHESIS_CLI_EXAMPLES", "15")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
WORDS = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12
)
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=False), WORDS
)


@st.composite
def bad_configs(draw) -> dict:
    """The toy config with a few fields changed and always one misspelled field."""
    data = toy_config()
    for _ in range(draw(st.integers(0, 3))):
        section = draw(st.sampled_from(["top", "model", "generation", "simulator"]))
        if section != "top" and not isinstance(data.get(section), dict):
            data[section] = {}  # an earlier draw may have set the whole section to a scalar
        target = data if section == "top" else data[section]
        key = draw(st.sampled_from([*target.keys(), "n_members", "fmax", "budget"]))
        target[key] = draw(VALUES)
    data[draw(st.sampled_from(["chemsys", "round", "sed", "modle"]))] = draw(VALUES)
    return data


@PROPERTY
@given(data=bad_configs(), command=st.sampled_from(["run", "validate"]), under=st.booleans())
def test_any_bad_config_exits_2_and_creates_nothing(tmp_path_factory, data, command, under):
    tmp = tmp_path_factory.mktemp("cfg")
    config = tmp / "c.yaml"
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    directory = tmp / "run" / "deeper" if under else tmp / "run"
    code, output = invoke(command, config, "--dir", directory)
    assert_clear_failure(code, output)
    assert files_under(tmp) == ["c.yaml"]


READERS = st.sampled_from(
    [
        ("status",),
        ("export", "--out", "{tmp}/x.csv"),
        ("export", "--format", "cif", "--out", "{tmp}"),
        ("review", "list"),
        ("review", "approve", "{word}", "--reviewer", "{word}"),
        ("review", "comment", "{word}", "--reviewer", "{word}", "--note", "{word}"),
        ("review", "history", "{word}"),
        ("ui", "--port", "{port}"),
        ("serve", "--port", "{port}"),
    ]
)


@PROPERTY
@given(
    command=READERS,
    where=st.sampled_from(["missing", "a-file", "empty", "under-file"]),
    word=WORDS.filter(lambda w: not w.startswith("-")),
    port=st.integers(-5, 70_000),
)
def test_reading_commands_on_a_non_campaign_exit_2_and_create_nothing(
    tmp_path_factory, command, where, word, port
):
    tmp = tmp_path_factory.mktemp("read")
    (tmp / "a-file").write_text("x")
    (tmp / "empty").mkdir()
    directory = {"under-file": tmp / "a-file" / "camp"}.get(where, tmp / where)
    name, *rest = command
    args = [a.format(tmp=tmp, word=word, port=port) for a in rest]
    before = files_under(tmp)
    if name == "review":
        args = [args[0], str(directory), *args[1:]]
        code, output = invoke(name, *args)
    else:
        code, output = invoke(name, directory, *args)
    assert_clear_failure(code, output)
    assert files_under(tmp) == before
