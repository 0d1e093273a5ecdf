"""The campaign directory: where its files are, how a run creates it, and a read-only open
that never creates or leaves anything behind."""

from __future__ import annotations

import pytest
from conftest import toy_config

from discovery.config import ConfigError, parse_config
from discovery.engine.campaign_directory import (
    CONFIG_FILE,
    STORE_FILE,
    CampaignDirectory,
    open_campaign,
)


def config(**changes):
    return parse_config({**toy_config(), **changes})


def test_urls_default_to_files_inside_the_directory_and_follow_the_config(tmp_path):
    location = CampaignDirectory(tmp_path / "run")
    cfg = config()
    assert location.store_url(cfg) == f"sqlite:///{(tmp_path / 'run' / STORE_FILE).resolve()}"
    assert location.tracking_uri(cfg).endswith("/run/mlflow.db")
    assert location.describe_store(cfg) == STORE_FILE
    other = config(store={"url": "postgresql+psycopg://u@db/x"}, tracking={"uri": "http://m:5000"})
    assert location.store_url(other) == "postgresql+psycopg://u@db/x"
    assert location.tracking_uri(other) == "http://m:5000"
    assert not (tmp_path / "run").exists()  # nothing is touched by asking


def test_reading_a_directory_without_a_campaign_creates_nothing(tmp_path):
    with pytest.raises(ConfigError, match=f"missing {CONFIG_FILE}"):
        open_campaign(tmp_path / "absent")
    assert not (tmp_path / "absent").exists()
    location = CampaignDirectory(tmp_path / "run")
    location.prepare(config())
    with pytest.raises(ConfigError, match="has not started"):
        location.open()
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [CONFIG_FILE]


def test_a_run_opens_the_store_and_readers_see_the_same_campaign(tmp_path):
    location = CampaignDirectory(tmp_path / "run")
    cfg = config()
    location.prepare(cfg)
    writer = location.open(cfg, read_only=False)
    reader = open_campaign(tmp_path / "run")
    assert reader.campaign_id == writer.campaign_id
    assert reader.config == cfg and reader.fidelities == ["emt"]
    assert reader.checkpoint_dir == tmp_path / "run" / "checkpoints"
    assert (tmp_path / "run" / STORE_FILE).is_file()
    again = location.open(cfg, read_only=False)  # a resumed run finds its campaign row
    assert again.campaign_id == writer.campaign_id
    for camp in (writer, reader, again):
        camp.db.dispose()


def test_a_directory_takes_more_rounds_of_its_campaign_but_not_another(tmp_path):
    location = CampaignDirectory(tmp_path / "run")
    location.prepare(config(rounds=2))
    location.prepare(config(rounds=5))  # extending a campaign is allowed
    assert location.saved_config().rounds == 5
    with pytest.raises(ConfigError, match="holds a different campaign"):
        location.prepare(config(seed=99))


def test_a_changed_config_names_the_fields_that_differ(tmp_path):
    location = CampaignDirectory(tmp_path / "run")
    location.prepare(config())
    changed = parse_config(
        {**toy_config(), "seed": 99, "model": {**toy_config()["model"], "hidden": 16}}
    )
    for check in (location.preflight, location.prepare):
        with pytest.raises(ConfigError) as err:
            check(changed)
        message = str(err.value)
        assert "holds a different campaign" in message
        assert "  seed: 0 -> 99" in message.splitlines()
        assert "  model.hidden: 32 -> 16" in message.splitlines()
        assert "rounds" not in message.split("Fields that differ")[1]


def test_preflight_refuses_unusable_paths_and_creates_nothing(tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ConfigError, match="a-file is not a directory"):
        CampaignDirectory(tmp_path / "a-file" / "run").preflight(config())
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        CampaignDirectory(tmp_path / "a-file").preflight(config())
    bad = config(
        store={"url": f"sqlite:///{tmp_path}/missing/campaign.db"},
        tracking={"uri": "foo://somewhere"},
    )
    with pytest.raises(ConfigError) as err:
        CampaignDirectory(tmp_path / "run").preflight(bad)
    lines = str(err.value).splitlines()
    assert lines[0] == "2 problems"
    assert "'store.url'" in lines[1] and "missing does not exist" in lines[1]
    assert "'tracking.uri': unknown scheme 'foo'" in lines[2]
    with pytest.raises(ConfigError, match="'store.url': 'nonsense' is not a database URL"):
        CampaignDirectory(tmp_path / "run").preflight(config(store={"url": "nonsense"}))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_failed_set_up_leaves_nothing_behind(tmp_path):
    from discovery.engine.round_loop import run_campaign

    pytest.importorskip("psycopg")
    # Passes the static checks; the server is not there.
    cfg = config(store={"url": "postgresql+psycopg://u@127.0.0.1:1/none"})
    with pytest.raises(ConfigError, match="cannot set up the campaign in .*Connection refused"):
        run_campaign(cfg, tmp_path / "new" / "run")
    assert not (tmp_path / "new").exists()
    # In an existing directory only what the run added goes.
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError):
        run_campaign(cfg, tmp_path / "kept")
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["notes.txt"]
    # The corrected config is then not refused as "a different campaign".
    location = CampaignDirectory(tmp_path / "new" / "run")
    location.preflight(config())
