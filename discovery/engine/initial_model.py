"""Where a campaign's ensemble starts (`model.init`): from scratch, or from a checkpoint that
`discovery pretrain` wrote. A checkpoint is checked against the model section and the
campaign's elements before anything is created, then copied into the campaign directory and
recorded as model version `init` from before round 0, so that round 0 screens and selects
with it and the learn stage fine-tunes from it."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import select

from discovery.config import INIT_BUNDLED, INIT_SCRATCH, CampaignConfig, ConfigError
from discovery.engine.context import CampaignContext
from discovery.engine.ensembles import settings_for
from discovery.engine.replay_set import copy_replay, replay_path
from discovery.store import ModelVersion

log = logging.getLogger(__name__)

INIT_VERSION = "init"
INIT_FILE = "init.pt"
# The checkpoint `model.init: bundled` names: written by `discovery pretrain
# campaigns/pretrain-oxides.yaml`, shipped with its data card (discovery/data/pretrained/).
BUNDLED_CHECKPOINT = "oxides-v1.pt"


def bundled_checkpoint() -> Path:
    """Where the installed package keeps its pretrained checkpoint."""
    return Path(__file__).resolve().parents[1] / "data" / "pretrained" / BUNDLED_CHECKPOINT


def _refuse(text: str) -> ConfigError:
    return ConfigError(f"invalid value for 'model.init': {text}")


def checkpoint_problems(payload: dict[str, Any], config: CampaignConfig) -> list[str]:
    """How a checkpoint's payload does not fit the campaign, one line per mismatch, each
    naming the config field (empty when it fits)."""
    m = config.model
    kind = payload.get("kind", "crystal")
    if kind != m.kind:
        return [f"model.kind: checkpoint holds a {kind} model, config asks {m.kind}"]
    saved = payload.get("gnn" if kind == "crystal" else "settings") or {}
    wanted = settings_for(m.kind, m.cutoff, m.hidden, m.layers).to_dict()
    problems = [
        f"model.{key}: checkpoint has {saved.get(key)!r}, config asks {value!r}"
        for key, value in wanted.items()
        if saved.get(key) != value
    ]
    if payload.get("n_members") != m.n_members:
        problems.append(
            f"model.n_members: checkpoint has {payload.get('n_members')!r}, "
            f"config asks {m.n_members!r}"
        )
    trained_on = (payload.get("extra") or {}).get("elements")
    if trained_on is not None:
        missing = sorted(set(config.elements) - set(trained_on))
        if missing:
            problems.append(
                f"chemical_systems: the checkpoint was trained on {', '.join(trained_on)}; "
                f"it never saw {', '.join(missing)}"
            )
    return problems


def init_checkpoint(config: CampaignConfig) -> Path | None:
    """The checkpoint the campaign starts from (None from scratch); a ConfigError naming the
    field for one that is missing or does not fit."""
    init = config.model.init
    if init == INIT_SCRATCH:
        return None
    path = bundled_checkpoint() if init == INIT_BUNDLED else Path(init)
    if not path.is_file():
        if init == INIT_BUNDLED:
            raise _refuse(f"the bundled checkpoint is missing from this installation ({path})")
        raise _refuse(f"checkpoint {path} not found")
    from models.checkpoints import CheckpointMismatchError, read_checkpoint

    try:
        payload = read_checkpoint(path)
    except CheckpointMismatchError as err:
        raise _refuse(str(err)) from None
    except Exception as err:  # not a torch file, truncated, unreadable
        raise _refuse(f"{path} is not a readable checkpoint ({type(err).__name__})") from None
    problems = checkpoint_problems(payload, config)
    if problems:
        raise _refuse(f"{path} does not fit this campaign: " + "; ".join(problems))
    teacher = ((payload.get("extra") or {}).get("pretrain") or {}).get("teacher")
    if teacher is not None and teacher != config.simulator.name:
        log.warning(
            "model.init: the checkpoint learnt %s energies; this campaign validates with %s "
            "(fine-tuning moves it over, round 0's guidance is approximate)",
            teacher, config.simulator.name,
        )  # fmt: skip
    return path


def register_init_model(ctx: CampaignContext, path: Path | None) -> None:
    """Copy the checkpoint into the campaign and record it as model version `init` (before
    round 0); done once, a resumed campaign keeps its copy."""
    if path is None:
        return
    with ctx.db.session() as session:
        found = session.scalars(
            select(ModelVersion).where(
                ModelVersion.campaign_id == ctx.campaign_id, ModelVersion.version == INIT_VERSION
            )
        ).first()
        if found is not None:
            return
        ctx.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        target = ctx.checkpoint_dir / INIT_FILE
        fd, tmp = tempfile.mkstemp(prefix=f".{INIT_FILE}.", dir=ctx.checkpoint_dir)
        os.close(fd)
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)
        replay = _source_replay(path)
        if replay is None:
            log.info("model: checkpoint %s has no replay set; fine-tuning replays nothing", path)
        else:
            copy_replay(replay, replay_path(target))
        session.add(
            ModelVersion(
                campaign_id=ctx.campaign_id,
                version=INIT_VERSION,
                round_index=-1,
                n_train=0,
                checkpoint=f"{target.relative_to(ctx.directory)}",
                metrics={"source": str(path)},
            )
        )
    log.info("model: starting from checkpoint %s", path)


def _source_replay(checkpoint: Path) -> Path | None:
    """The replay set `discovery pretrain` wrote beside `checkpoint` (named in its extra),
    or None for a checkpoint without one."""
    from models.checkpoints import read_checkpoint

    extra = read_checkpoint(checkpoint).get("extra") or {}
    name = (extra.get("pretrain") or {}).get("replay")
    path = checkpoint.parent / name if name else replay_path(checkpoint)
    return path if path.is_file() else None


def init_replay(ctx: CampaignContext) -> Path | None:
    """The campaign's copy of its starting checkpoint's replay set, None without one."""
    path = replay_path(ctx.checkpoint_dir / INIT_FILE)
    return path if path.is_file() else None


def guided_by(ctx: CampaignContext, version: str) -> str | None:
    """The source checkpoint when `version` is the campaign's starting model, else None."""
    if version != INIT_VERSION:
        return None
    return ctx.config.model.init
