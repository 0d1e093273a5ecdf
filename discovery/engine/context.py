"""Everything a stage needs, built once per `discovery run`."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from sqlalchemy import select

from discovery.config import CampaignConfig
from discovery.engine.progress import StageProgress
from discovery.engine.tracking import Tracker
from discovery.store import Calculation, Candidate, Database, Round
from discovery.store.queries import validated_pairs


@dataclass
class CampaignContext:
    config: CampaignConfig
    directory: Path
    db: Database
    tracker: Tracker
    campaign_id: int
    progress: StageProgress
    _simulators: dict = field(default_factory=dict, repr=False)

    @property
    def fidelity(self) -> str:
        """The first rung's: the fidelity the model learns from and the screen ranks by."""
        return self.config.simulator.fidelity

    @property
    def fidelities(self) -> list[str]:
        """Every rung's fidelity, cheapest first."""
        return [sim.fidelity for sim in self.config.ladder]

    @property
    def checkpoint_dir(self) -> Path:
        return self.directory / "checkpoints"

    def simulator_spec(self, relax_cell: bool, rung: int = 0):
        """One rung's simulator as a picklable recipe, for executors in other processes."""
        # Imported here so that `discovery status` and friends never load torch models.
        from discovery.engine.executors import SimulatorSpec
        from simulators import RelaxSettings, get_backend

        sim = self.config.ladder[rung]
        settings = RelaxSettings(
            fmax=sim.fmax,
            max_steps=sim.max_steps,
            optimizer=sim.optimizer,
            relax_cell=relax_cell,
            min_distance=sim.min_distance,
            max_volume_ratio=sim.max_volume_ratio,
            min_energy_per_atom=sim.min_energy_per_atom,
            max_seconds=sim.max_seconds,
            spin_polarized=sim.spin_polarized,
        )
        return SimulatorSpec(
            sim.name,
            settings,
            device=sim.device,
            options=dict(sim.options),
            backend=get_backend(sim.name),
        )

    def simulator_for(self, rung: int, relax_cell: bool):
        """The simulator of one rung, built once per run; molecules in a box (relax_cell
        False) get a fixed-cell twin so that the cell does not shrink around them."""
        key = (rung, relax_cell and self.config.ladder[rung].relax_cell)
        if key not in self._simulators:
            self._simulators[key] = self.simulator_spec(key[1], rung).build()
        return self._simulators[key]

    @cached_property
    def executor(self):
        """The executor the config asks for (None: relax in this process). Built on first
        use: a ladder whose every rung is batched never starts one."""
        if self.config.executor.kind == "inline":
            return None
        from discovery.engine.executors import executor_for

        return executor_for(self.config.executor)

    def close(self) -> None:
        """Release what the run started: a Dask cluster must not outlive the campaign."""
        if self.__dict__.get("executor") is not None:  # only if it was ever built
            self.executor.close()

    @property
    def simulator(self):
        return self.simulator_for(0, relax_cell=True)

    def validated_pairs(self, session) -> list[tuple[Candidate, Calculation]]:
        """Every successful calculation at this campaign's fidelity, references included."""
        return validated_pairs(session, self.campaign_id, self.fidelity)

    def round_row(self, session, round_index: int) -> Round:
        return session.scalars(
            select(Round).where(Round.campaign_id == self.campaign_id, Round.index == round_index)
        ).one()

    def mark_stage(self, session, round_index: int, stage: str, metrics: dict | None = None):
        """Record a finished stage in the same transaction as its results, so that a kill
        leaves either both or neither."""
        row = self.round_row(session, round_index)
        row.stage = stage
        if metrics:
            row.metrics = {**(row.metrics or {}), **metrics}
        return row
