"""Shared fixtures: paths, the toy campaign (run once per session), CLI helpers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TOY = REPO / "campaigns" / "toy-emt.yaml"


def cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real `discovery` console entry point in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "discovery.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd or REPO,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def toy_campaign(tmp_path_factory) -> Path:
    """campaigns/toy-emt.yaml run once, uninterrupted, through the CLI."""
    directory = tmp_path_factory.mktemp("toy") / "run"
    result = cli("run", TOY, "--dir", directory)
    assert result.returncode == 0, result.stderr[-3000:]
    return directory


@pytest.fixture
def toy_copy(toy_campaign, tmp_path) -> Path:
    """A private copy of the finished toy campaign for tests that write to it."""
    target = tmp_path / "toy"
    shutil.copytree(toy_campaign, target)
    return target


def write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def toy_config() -> dict:
    return yaml.safe_load(TOY.read_text())
