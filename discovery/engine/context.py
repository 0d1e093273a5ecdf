"""Everything a stage needs, built once per `discovery run`: the open campaign plus its
tracker, progress display, simulators and executor."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import select

from discovery.engine.campaign_directory import OpenCampaign
from discovery.engine.executors import (
    Executor,
    SimulatorSpec,
    cached_simulator,
    executor_for,
    spec_for,
)
from discovery.engine.progress import StageProgress
from discovery.engine.tracking import Tracker
from discovery.store import Calculation, Candidate, Round
from discovery.store.queries import validated_pairs

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@dataclass
class CampaignContext(OpenCampaign):
    tracker: Tracker = field(kw_only=True)
    progress: StageProgress = field(kw_only=True)

    def simulator_spec(self, relax_cell: bool, rung: int = 0) -> SimulatorSpec:
        """One rung's simulator as a picklable recipe, for executors in other processes."""
        return spec_for(self.config.ladder[rung], relax_cell)

    def simulator_for(self, rung: int, relax_cell: bool):
        """The simulator of one rung, built once per run; molecules in a box (relax_cell
        False) get a fixed-cell twin so that the cell does not shrink around them."""
        return cached_simulator(
            self.simulator_spec(relax_cell and self.config.ladder[rung].relax_cell, rung)
        )

    @cached_property
    def executor(self) -> Executor:
        """The executor the config asks for. Built on first use: a ladder whose every rung
        is batched never starts one."""
        return executor_for(self.config.executor)

    def close(self) -> None:
        """Release what the run started: a Dask cluster must not outlive the campaign."""
        if "executor" in self.__dict__:  # only if it was ever built
            self.executor.close()

    @property
    def simulator(self):
        return self.simulator_for(0, relax_cell=True)

    def validated_pairs(self, session: Session) -> list[tuple[Candidate, Calculation]]:
        """Every successful calculation at this campaign's fidelity, references included."""
        return validated_pairs(session, self.campaign_id, self.fidelity)

    def round_row(self, session: Session, round_index: int) -> Round:
        return session.scalars(
            select(Round).where(Round.campaign_id == self.campaign_id, Round.index == round_index)
        ).one()

    def mark_stage(
        self, session: Session, round_index: int, stage: str, metrics: dict | None = None
    ):
        """Record a finished stage in the same transaction as its results, so that a kill
        leaves either both or neither."""
        row = self.round_row(session, round_index)
        row.stage = stage
        if metrics:
            row.metrics = {**(row.metrics or {}), **metrics}
        return row
