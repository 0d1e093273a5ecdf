"""The campaign configuration: one pydantic model, loaded from YAML, validated before any work."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pymatgen.core import Element

# The registry is plain data: reading it imports no torch, ASE or DFT code.
from simulators.registry import backend_names, get_backend, is_import_path, names_with, or_list


class ConfigError(ValueError):
    """A campaign config that cannot be used. The message names every problem, one per line
    (a single problem is a single line), each with its place and what is allowed."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_element(symbol: str) -> str:
    if not Element.is_valid_symbol(symbol):
        raise ValueError(f"unknown element {symbol!r}")
    return symbol


def parse_chemsys(text: str) -> tuple[str, ...]:
    """'Li-Mn-O' -> ('Li', 'Mn', 'O') sorted, each a real element."""
    parts = [p.strip() for p in text.split("-") if p.strip()]
    if not parts:
        raise ValueError(f"empty chemical system {text!r}")
    for p in parts:
        _check_element(p)
    if len(set(parts)) != len(parts):
        raise ValueError(f"repeated element in chemical system {text!r}")
    return tuple(sorted(parts))


class SubstitutionConfig(_Section):
    """Ion substitution on built-in prototype structures."""

    enabled: bool = Field(True, description="Run this generator.")
    budget: int = Field(60, ge=0, description="Maximum new candidates per round.")
    threshold: float = Field(
        0.001,
        ge=0,
        le=1,
        description="Minimum product of pymatgen's conditional substitution probabilities "
        "(GNoME used 0.001). Ignored for purely metallic systems, which have no ionic table.",
    )
    prototypes: list[str] | None = Field(
        None, description="Prototype names to use (see `discovery prototypes`); null = all."
    )

    @field_validator("prototypes")
    @classmethod
    def _known_prototypes(cls, v: list[str] | None) -> list[str] | None:
        from discovery.domain.generation.prototypes import prototype_names

        unknown = [n for n in v or [] if n not in prototype_names()]
        if unknown:
            raise ValueError(f"unknown prototype {unknown[0]!r} (see `discovery prototypes`)")
        return v


class PartialSubstitutionConfig(_Section):
    """Symmetry-aware partial substitution (SAPS): part of one site orbit of a parent takes
    another element of the chemical system; only symmetry-distinct orderings are kept."""

    enabled: bool = Field(
        False, description="Run this generator (off by default: campaigns opt in)."
    )
    budget: int = Field(20, ge=0, description="Maximum new candidates per round.")
    max_parent_sites: int = Field(
        8,
        ge=2,
        description="Parents (substituted prototypes and user structures) are used in their "
        "conventional or primitive cell with at most this many sites.",
    )
    max_orderings: int = Field(
        12, ge=1, description="Symmetry-distinct orderings kept per parent, orbit and element."
    )


class RandomSearchConfig(_Section):
    """AIRSS-like random symmetric crystals from pyxtal for enumerated compositions."""

    enabled: bool = Field(True, description="Run this generator.")
    budget: int = Field(30, ge=0, description="Maximum new candidates per round.")
    max_formula_units: int = Field(2, ge=1, le=4, description="Formula units per cell, 1..n.")
    space_groups: tuple[int, int] = Field(
        (2, 230), description="Inclusive range of space-group numbers to draw from."
    )
    attempts_per_structure: int = Field(
        8, ge=1, description="Space groups tried before a composition is skipped."
    )
    per_composition: int = Field(
        0,
        ge=0,
        description="Structures drawn per composition before the next (GNoME used 100); "
        "0 = a random composition for every draw.",
    )

    @field_validator("space_groups")
    @classmethod
    def _spg_range(cls, v: tuple[int, int]) -> tuple[int, int]:
        lo, hi = v
        if not (1 <= lo <= hi <= 230):
            raise ValueError("must be [low, high] with 1 <= low <= high <= 230")
        return v


class CompositionConfig(_Section):
    """Stoichiometries enumerated for the chemical systems."""

    max_atoms: int = Field(8, ge=2, description="Maximum atoms per formula unit.")
    charge_balanced: bool = Field(
        True,
        description="Keep only smact-valid (charge-balanced, electronegativity-ordered) "
        "formulas. Switch off for intermetallics.",
    )
    include_subsystems: bool = Field(
        True, description="Also enumerate the binary (and smaller) sub-systems."
    )
    rank_by_model: bool = Field(
        False,
        description="With model.kind: composition, rank the enumerated compositions by the "
        "previous round's model (predicted hull distance minus its spread) before any "
        "structure is built, and give random search only the best keep_top. Round 0 has no "
        "model and keeps all.",
    )
    keep_top: int = Field(
        20, ge=1, description="Compositions kept for random search when ranked by the model."
    )


class WideningConfig(_Section):
    """What a generator whose pool runs dry within a round (every draw a duplicate or
    rejected before its budget is filled) may do, one step at a time: substitution and
    partial substitution lower their probability threshold tenfold per step, partial
    substitution also keeps twice the orderings, and random search tries one more formula
    unit per cell. Each step is logged and counted in the round's metrics."""

    enabled: bool = Field(True, description="Widen a generator whose pool runs dry.")
    max_steps: int = Field(3, ge=0, le=6, description="Widening steps per generator and round.")
    min_threshold: float = Field(
        1e-6,
        gt=0,
        le=1,
        description="Lowest substitution probability threshold that widening reaches.",
    )
    max_formula_units: int = Field(
        4, ge=1, le=8, description="Most formula units per cell that widening gives random search."
    )
    max_orderings: int = Field(
        96, ge=1, description="Most orderings per parent that widening gives partial substitution."
    )


class GenerationConfig(_Section):
    """Candidate generators and the sanity filters applied to their output."""

    substitution: SubstitutionConfig = Field(default_factory=SubstitutionConfig)
    partial: PartialSubstitutionConfig = Field(default_factory=PartialSubstitutionConfig)
    random: RandomSearchConfig = Field(default_factory=RandomSearchConfig)
    compositions: CompositionConfig = Field(default_factory=CompositionConfig)
    widening: WideningConfig = Field(default_factory=WideningConfig)
    min_distance: float = Field(
        0.7, gt=0, description="Reject structures with two atoms closer than this (Å)."
    )
    max_sites: int = Field(24, ge=1, description="Reject structures with more sites than this.")
    density_range: tuple[float, float] = Field(
        (0.5, 25.0),
        description="Reject structures whose density (g/cm³) lies outside [low, high]; the "
        "lightest solid element (Li) is 0.53, the densest (Os) 22.6.",
    )
    structures: list[str] = Field(
        default_factory=list,
        description="Files or folders (CIF, POSCAR, pymatgen JSON, extxyz) of parent "
        "structures for substitution, next to the built-in prototypes.",
    )
    known: list[str] = Field(
        default_factory=list,
        description="Files or folders of known structures: a candidate matching one is never "
        "generated (novelty beyond the references and the campaign's history).",
    )
    order_disordered: bool = Field(
        False,
        description="Order partially occupied user structures (lowest Ewald energy) instead "
        "of rejecting them.",
    )

    @field_validator("density_range")
    @classmethod
    def _density_range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= v[0] < v[1]:
            raise ValueError("must be [low, high] with 0 <= low < high (g/cm³)")
        return v


class ReplayConfig(_Section):
    """Synthetic (teacher-labelled) entries mixed into each round's fine-tuning when the
    campaign starts from a checkpoint that `discovery pretrain` wrote with its replay set:
    they keep what pretraining taught while real data is scarce, weigh less than real data and
    give way as it grows (count = round(size * halving / (halving + real entries)))."""

    enabled: bool = Field(
        True, description="Replay synthetic entries (only with a model.init checkpoint)."
    )
    size: int = Field(
        256, ge=0, description="Synthetic entries mixed in while there is no real data yet."
    )
    halving: int = Field(
        32,
        ge=1,
        description="Real training entries at which the synthetic count has halved.",
    )
    weight: float = Field(
        0.25,
        gt=0,
        lt=1,
        description="Loss weight of a synthetic entry relative to a real one (below 1: real "
        "data always counts more).",
    )


class ModelConfig(_Section):
    """The deep ensemble that screens candidates: a crystal GNN, or a composition model."""

    kind: Literal["crystal", "composition"] = Field(
        "crystal",
        description="crystal: GNN on the periodic structure graph; composition: Roost-like "
        "network on the formula alone (polymorphs get one prediction).",
    )
    n_members: int = Field(3, ge=2, le=32, description="Ensemble members (different seeds).")
    cutoff: float = Field(
        5.0, gt=0, le=12, description="Neighbour cutoff of the crystal graph (Å)."
    )
    hidden: int = Field(64, ge=4, description="Channel width.")
    layers: int = Field(3, ge=1, le=12, description="Message-passing layers.")
    epochs: int = Field(150, ge=1, description="Maximum training epochs per member.")
    learning_rate: float = Field(3e-3, gt=0, description="AdamW learning rate.")
    batch_size: int = Field(32, ge=1, description="Training batch size.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    retrain: Literal["scratch", "finetune"] = Field(
        "scratch",
        description="Each round: train a fresh ensemble, or fine-tune the previous round's.",
    )
    init: str = Field(
        "scratch",
        min_length=1,
        description="Where the ensemble starts: scratch (no model before round 0's data), a "
        "checkpoint written by `discovery pretrain` (a path, relative to the YAML), or "
        "bundled (the checkpoint shipped with the package). With a checkpoint, round 0 is "
        "screened and selected by it and every round fine-tunes from the model before it; "
        "a checkpoint whose kind, cutoff, hidden, layers, members or elements do not fit is "
        "refused at start.",
    )
    device: str = Field(
        "auto", description="'auto' (CUDA when present), 'cpu', 'cuda' or 'cuda:N'."
    )
    volume_augmentation: list[float] = Field(
        default_factory=list,
        description="Test-time augmentation of the crystal model: also predict each candidate "
        "with its volume times these factors (e.g. [0.8, 0.9, 1.0, 1.1, 1.2]); empty = off.",
    )
    augment_aggregate: Literal["mean", "min"] = Field(
        "mean",
        description="How one member combines its augmented predictions: mean, or min (the "
        "volume that suits the candidate best, as a relaxation would find).",
    )
    replay: ReplayConfig = Field(
        default_factory=ReplayConfig,
        description="Campaigns only: synthetic entries replayed in fine-tuning.",
    )

    @field_validator("volume_augmentation")
    @classmethod
    def _volume_factors(cls, v: list[float]) -> list[float]:
        bad = [f for f in v if not 0.5 <= f <= 2.0]
        if bad:
            raise ValueError(f"volume factors must lie in [0.5, 2.0], got {bad}")
        return v

    @model_validator(mode="after")
    def _augment_needs_structure(self) -> ModelConfig:
        if self.volume_augmentation and self.kind == "composition":
            raise ValueError(
                "volume_augmentation needs kind: crystal (a composition model sees no volume)"
            )
        return self

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v not in ("auto", "cpu", "cuda") and not v.startswith("cuda:"):
            raise ValueError("must be one of 'auto', 'cpu', 'cuda', 'cuda:N'")
        return v


class GuardsConfig(_Section):
    """Checks against model collapse, each round (warnings in the log, MLflow and status)."""

    enabled: bool = Field(True, description="Compute the guard metrics and warnings.")
    holdout_references: bool = Field(
        True,
        description="Reference structures above the hull (metastable elemental polymorphs, "
        "known compounds off the hull) never enter training and are the fixed real set the "
        "model's error is tracked on.",
    )
    rise_rounds: int = Field(
        2, ge=1, description="Warn when the held-out error has risen this many rounds in a row..."
    )
    min_rise_fraction: float = Field(
        0.1,
        ge=0,
        description="... by more than this fraction of where it started (retraining noise "
        "moves it a few per cent).",
    )
    min_chemsys_share: float = Field(
        0.25,
        ge=0,
        le=1,
        description="Warn when a round's validated candidates span fewer chemical systems than "
        "this share of those they could have spanned.",
    )


class AcquisitionConfig(_Section):
    """How candidates are chosen for validation from the screened pool."""

    strategy: Literal["greedy", "lcb", "thompson", "random"] = Field(
        "greedy",
        description="greedy: lowest predicted hull distance (the default: it found the most "
        "stable candidates per validation in benchmarks/campaign_efficiency.py and al_wbm); "
        "lcb: lowest mean - kappa*std (optimism under uncertainty); thompson: lowest draw from "
        "N(mean, std^2); random. Round 0 is random unless a checkpoint (model.init) screens it.",
    )
    kappa: float = Field(1.0, ge=0, description="Exploration weight of the ensemble spread in lcb.")
    max_per_chemsys: int | None = Field(
        None,
        ge=1,
        description="Cap on picks per chemical system per round (diversity); null = none.",
    )


class SimulatorConfig(_Section):
    """The physics that validates candidates (an ASE calculator)."""

    name: str = Field(
        "sevennet",
        description="'sevennet' (SevenNet-0, weights in the sevenn package; the default: "
        "closest to PBE in benchmarks/potential_accuracy.py), 'chgnet' (CHGNet 0.3.0, weights "
        "in the package), 'gpaw' (DFT, PBE plane waves; the [dft] extra), 'emt' (toy: "
        "Al/Cu/Ag/Au/Ni/Pd/Pt) or an import path 'package.module:factory' returning an ASE "
        "calculator.",
    )
    fmax: float = Field(0.05, gt=0, description="Force convergence criterion (eV/Å).")
    max_steps: int = Field(300, ge=1, description="Optimizer step limit per relaxation.")
    optimizer: Literal["FIRE", "BFGS"] = Field("FIRE", description="ASE optimizer.")
    relax_cell: bool = Field(True, description="Relax the cell too (FrechetCellFilter).")
    device: str = Field("cpu", description="Device for ML potentials ('cpu', 'cuda').")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments for an import-path factory."
    )
    max_seconds: float | None = Field(
        None,
        gt=0,
        description="Wall-time limit per structure (s); a relaxation past it stops and is "
        "recorded as failed ('wall-time limit'). Checked between optimizer steps. null = none.",
    )
    min_distance: float = Field(
        0.5, ge=0, description="Atoms closer than this (Å), at the start or later, = failure."
    )
    max_volume_ratio: float = Field(
        3.0, gt=1, description="Cell volume changing by more than this factor either way = failure."
    )
    min_energy_per_atom: float = Field(
        -50.0, description="Energy per atom below this (eV/atom) is nonsense = failure."
    )
    spin_polarized: bool = Field(
        True,
        description="Magnetic elements (Mn, Fe, Co, Ni, ...) start with initial magnetic moments, "
        "for calculators that take them (GPAW, VASP); CHGNet predicts its own.",
    )
    batched: bool = Field(
        False,
        description="Relax the validate stage's structures together, one model call per step "
        "for the whole batch ('chgnet' and 'sevennet' only); same results as one at a time.",
    )
    batch_size: int = Field(32, ge=1, description="Structures relaxed together when batched.")
    label: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="Name of this fidelity in the store, tables and MLflow; null = the "
        "simulator's name. Two rungs of a ladder with one calculator need two labels.",
    )
    formation_energy: Literal["own", "mp2020"] = Field(
        "own",
        description="own: against elemental references relaxed by this simulator; mp2020: the "
        "Materials Project 2020 corrections applied and MP's elemental reference energies, as "
        "Matbench Discovery does, for potentials trained on MP data ('chgnet', 'sevennet', an "
        "import path), so numbers compare with MP and WBM.",
    )

    @property
    def energy_scheme(self) -> str:
        """How formation energies are taken: "own" (the simulator's elemental references),
        "mp2020" (MP2020 corrections, then MP's references) or "mp2020_native" (energies
        already MP2020-corrected by the model itself: MP's references only)."""
        if self.formation_energy != "mp2020":
            return "own"
        return "mp2020_native" if get_backend(self.name).mp2020_corrected else "mp2020"

    @property
    def fidelity(self) -> str:
        return self.label or self.name

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if is_import_path(v):
            _check_import_path(v)
            return v
        try:
            get_backend(v)
        except ValueError:
            raise ValueError(
                f"must be {or_list(backend_names())} or an import path 'package.module:factory'"
            ) from None
        return v

    @model_validator(mode="after")
    def _batched_needs_batch_model(self) -> SimulatorConfig:
        backend = get_backend(self.name)
        if self.batched and not backend.can_batch:
            batched = or_list(names_with(lambda b: b.can_batch))
            raise ValueError(f"batched: true needs {batched}, not {self.name!r}")
        if self.formation_energy == "mp2020" and not backend.mp_compatible:
            # Plain PBE (GPAW) or EMT energies are not on MP's corrected scale.
            raise ValueError(
                f"formation_energy: mp2020 is for potentials trained on MP data, not {self.name!r}"
            )
        return self


class FidelityConfig(SimulatorConfig):
    """A higher rung of the fidelity ladder: each round the best candidates of the rung below
    are relaxed again here, starting from the structure the rung below relaxed."""

    promote: int = Field(
        2,
        ge=0,
        description="How many of the round's best candidates on the rung below are relaxed "
        "again on this rung.",
    )
    promote_max_e_above_hull: float = Field(
        0.1,
        ge=0,
        description="Only candidates at most this far above the rung-below hull (eV/atom) are "
        "promoted: DFT time goes to plausible discoveries.",
    )


def _check_import_path(path: str) -> None:
    """Fail at config load, naming the path, if its module cannot be found.

    Only the module's location is looked up (its parent packages are imported, the module
    itself is not), so a config check does not run a calculator's import-time code.
    """
    import importlib.util

    module = path.split(":", 1)[0]
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as e:
        raise ValueError(f"calculator {path!r}: cannot find module {module!r} ({e})") from e
    if spec is None:
        raise ValueError(f"calculator {path!r}: no module named {module!r}")


KNOWN_SOURCE_KINDS = ("bundled", "entries", "structures", "materials_project")


class KnownSourceConfig(_Section):
    """One source of known phases. In YAML a plain name (`bundled`, `materials_project`)
    or a one-key mapping (`{entries: alexandria.json.bz2}`, `{structures: cifs/}`) will do."""

    kind: Literal["bundled", "entries", "structures", "materials_project"] = Field(
        description="bundled: the Li-Mn-O phases shipped with the package; entries: a file of "
        "pymatgen ComputedStructureEntry dicts (JSON, .gz, .bz2: MP downloads, Alexandria); "
        "structures: a folder of CIF/POSCAR/extxyz/JSON files without energies; "
        "materials_project: MP through mp-api (needs MP_API_KEY)."
    )
    path: str | None = Field(None, description="entries: the file; structures: the folder or file.")
    energy_scheme: str = Field(
        "mp2020",
        description="entries: the energy scheme of the file's corrected energies (mp2020: MP "
        "GGA/GGA+U with MP2020 corrections, as MP, Alexandria-PBE and WBM use).",
    )
    api_key: str | None = Field(
        None,
        description="materials_project: the API key; null = the MP_API_KEY environment "
        "variable (preferred: a YAML is logged to MLflow).",
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"kind": data}
        if isinstance(data, dict) and "kind" not in data and len(data) == 1:
            ((kind, value),) = data.items()
            if kind in ("entries", "structures"):
                return {"kind": kind, "path": value}
            if kind == "materials_project":
                return {"kind": kind, **(value or {})}
        return data

    @model_validator(mode="after")
    def _fields_fit_the_kind(self) -> KnownSourceConfig:
        if self.kind in ("entries", "structures") and not self.path:
            raise ValueError(f"a source of kind {self.kind!r} needs 'path'")
        if self.kind not in ("entries", "structures") and self.path:
            raise ValueError(f"'path' is for entries and structures sources, not {self.kind!r}")
        if self.api_key and self.kind != "materials_project":
            raise ValueError("'api_key' is for the materials_project source")
        return self


class ReferencesConfig(_Section):
    """What is already known: the phases a candidate's stability and novelty are judged
    against. Every source's phases join the hull (computed as `hull_mode` says), and a
    candidate matching one is known, never queued for review."""

    sources: list[KnownSourceConfig] = Field(
        default_factory=list,
        description="Known-phase sources in order, e.g. [bundled], [materials_project], "
        "[{entries: alexandria.json.bz2}, {structures: lab-cifs/}]; a phase found by several "
        "is kept once (the first source's), matched by structure.",
    )
    hull_mode: Literal["same_fidelity", "database"] = Field(
        "same_fidelity",
        description="same_fidelity: every known structure is relaxed by each rung's own "
        "simulator (once per store and simulator settings), so candidates and references are "
        "computed alike; database: known phases at their database energies (MP2020-corrected "
        "DFT), candidates at MP-compatible energies (needs formation_energy: mp2020), as "
        "Matbench Discovery does.",
    )
    exclude: list[str] = Field(
        default_factory=list,
        description="Ids of known phases to leave out (e.g. 'lit-LiMn2O4-spinel', 'mp-19006'), "
        "to test whether a campaign rediscovers them.",
    )
    disagreement_tolerance: float = Field(
        0.1,
        gt=0,
        description="eV/atom: where both hulls can be computed and a candidate's two "
        "distances differ by more, the reviewer sees a warning.",
    )
    known: list[str] = Field(
        default_factory=list,
        description="Known compounds: prototype specs 'NAME:El1,El2,..' (e.g. 'rocksalt-MgO:Mn,O') "
        "or paths to structure files (CIF, POSCAR, pymatgen JSON). They join the hull and "
        "make matching candidates non-novel.",
    )

    @model_validator(mode="after")
    def _one_materials_project(self) -> ReferencesConfig:
        kinds = [s.kind for s in self.sources]
        if kinds.count("materials_project") > 1 or kinds.count("bundled") > 1:
            raise ValueError("each of bundled and materials_project may appear once in sources")
        return self


class ExecutorConfig(_Section):
    """Where relaxations run."""

    kind: Literal["pool", "inline", "dask", "slurm", "pbs"] = Field(
        "pool",
        description="pool: local worker processes, one task per structure, each worker on one "
        "core (a dead worker's task is rerun); inline: in the campaign's process (the "
        "tests' toy world; a batched rung always relaxes there); dask: one task per structure on a "
        "Dask cluster (results are committed as they arrive; a dead worker's task is rerun); "
        "slurm, pbs: the same, on Dask workers that dask-jobqueue submits as batch jobs "
        "(`pip install -e '.[hpc]'`).",
    )
    address: str | None = Field(
        None,
        description="Dask scheduler address (tcp://host:8786); null = a LocalCluster started "
        "by the campaign.",
    )
    workers: int | None = Field(
        None,
        ge=1,
        description="Worker processes of the pool or of the Dask LocalCluster; null = one per "
        "available core.",
    )
    retries: int = Field(2, ge=0, description="Retries of a task that raises.")
    # Batch jobs (kind slurm | pbs): each job runs `processes` single-threaded Dask workers.
    jobs: int = Field(1, ge=1, description="slurm/pbs: batch jobs to keep running.")
    queue: str | None = Field(None, description="slurm/pbs: partition or queue; null = default.")
    account: str | None = Field(None, description="slurm/pbs: account charged for the jobs.")
    cores: int = Field(1, ge=1, description="slurm/pbs: cores per job.")
    processes: int | None = Field(
        None, ge=1, description="slurm/pbs: Dask worker processes per job; null = `cores`."
    )
    memory: str = Field("4GB", description="slurm/pbs: memory per job, e.g. 16GB.")
    walltime: str = Field("01:00:00", description="slurm/pbs: wall-time limit per job.")
    job_extra_directives: list[str] = Field(
        default_factory=list,
        description="slurm/pbs: extra #SBATCH/#PBS lines, e.g. ['--constraint=cpu'].",
    )
    job_script_prologue: list[str] = Field(
        default_factory=list,
        description="slurm/pbs: shell lines run before the worker starts, e.g. "
        "['source ~/venv/bin/activate'].",
    )
    python: str | None = Field(
        None, description="slurm/pbs: Python on the compute nodes; null = this interpreter."
    )
    interface: str | None = Field(
        None, description="slurm/pbs: network interface the workers use, e.g. ib0; null = any."
    )

    @model_validator(mode="after")
    def _hpc(self) -> ExecutorConfig:
        if self.kind in ("slurm", "pbs"):
            if self.address is not None:
                raise ValueError(f"kind {self.kind} starts its own scheduler; leave address null")
            if self.processes is not None and self.processes > self.cores:
                raise ValueError(f"processes ({self.processes}) exceeds cores ({self.cores})")
        return self


class StoreConfig(_Section):
    url: str | None = Field(
        None,
        description="SQLAlchemy URL of the campaign store; null = SQLite file campaign.db in "
        "the campaign dir. postgresql+psycopg://... works too.",
    )


class TrackingConfig(_Section):
    uri: str | None = Field(
        None,
        description="MLflow tracking URI; null = SQLite store mlflow.db in the campaign dir.",
    )
    experiment: str | None = Field(None, description="MLflow experiment; null = campaign name.")


class CampaignConfig(_Section):
    """A discovery campaign."""

    name: str = Field(..., min_length=1, description="Campaign name (MLflow experiment name).")
    chemical_systems: list[str] = Field(
        ..., min_length=1, description="Chemical systems to explore, e.g. ['Li-Mn-O']."
    )
    rounds: int = Field(3, ge=1, description="Active-learning rounds.")
    validation_budget: int = Field(
        10, ge=1, description="Candidates validated by the simulator per round."
    )
    stability_threshold: float = Field(
        0.05, ge=0, description="Stable means energy above hull <= this (eV/atom), as GNoME."
    )
    review_size: int = Field(
        5, ge=0, description="Best stable, novel candidates queued for review per round."
    )
    seed: int = Field(0, ge=0, description="Seed for generation, selection and training.")
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    acquisition: AcquisitionConfig = Field(default_factory=AcquisitionConfig)
    guards: GuardsConfig = Field(default_factory=GuardsConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    simulator: SimulatorConfig = Field(default_factory=SimulatorConfig)
    fidelities: list[FidelityConfig] = Field(
        default_factory=list,
        description="The fidelity ladder, cheapest first, e.g. [chgnet, gpaw] or mappings "
        "with simulator fields plus 'promote'. The first rung is the simulator (and must match "
        "'simulator.name' when both are given); every rung has its own references and hull, "
        "and the highest rung that computed a candidate decides its stability. [] = the "
        "simulator alone.",
    )
    references: ReferencesConfig = Field(default_factory=ReferencesConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    @field_validator("chemical_systems")
    @classmethod
    def _chemsys(cls, v: list[str]) -> list[str]:
        return ["-".join(parse_chemsys(s)) for s in v]

    @field_validator("simulator")
    @classmethod
    def _simulator_elements(cls, v: SimulatorConfig, info: ValidationInfo) -> SimulatorConfig:
        _check_elements(v, info.data.get("chemical_systems"), "simulator")
        return v

    @field_validator("fidelities", mode="before")
    @classmethod
    def _rung_names(cls, v: Any) -> Any:
        # A bare name is a rung with default settings: `fidelities: [chgnet, gpaw]`.
        if isinstance(v, list):
            return [{"name": r} if isinstance(r, str) else r for r in v]
        return v

    @field_validator("fidelities")
    @classmethod
    def _ladder(cls, v: list[FidelityConfig], info: ValidationInfo) -> list[FidelityConfig]:
        if not v:
            return v
        sim = info.data.get("simulator")
        # A `simulator` section that sets anything must agree with the first rung; none at
        # all (or an empty one) is filled from it below.
        if sim is not None and sim.model_fields_set and v[0].name != sim.name:
            raise ValueError(
                f"the first rung is the simulator: {v[0].name!r} here, {sim.name!r} in "
                "'simulator.name'"
            )
        labels = [r.fidelity for r in v]
        if len(set(labels)) != len(labels):
            raise ValueError(
                f"a fidelity appears twice ({', '.join(labels)}); rungs that share a calculator "
                "need distinct 'label's"
            )
        # The ladder's shape first, then what each rung can compute.
        for k, rung in enumerate(v):
            _check_elements(rung, info.data.get("chemical_systems"), f"fidelities.{k}")
        return v

    @model_validator(mode="after")
    def _first_rung_is_the_simulator(self) -> CampaignConfig:
        if self.fidelities and not self.simulator.model_fields_set:
            # `fidelities: [chgnet, gpaw]` with no simulator section: the first rung is it.
            fields = self.fidelities[0].model_dump(exclude={"promote", "promote_max_e_above_hull"})
            object.__setattr__(self, "simulator", SimulatorConfig(**fields))
        return self

    @model_validator(mode="after")
    def _database_hull_needs_mp_energies(self) -> CampaignConfig:
        if self.references.hull_mode != "database":
            return self
        if self.simulator.formation_energy != "mp2020":
            raise ValueError(
                "references.hull_mode: database puts candidates on the database's hull, so "
                "their energies must be MP-compatible: set simulator.formation_energy: mp2020 "
                "(with a potential trained on MP data, e.g. chgnet or sevennet)"
            )
        if not self.references.sources:
            raise ValueError(
                "references.hull_mode: database needs known phases with database energies: "
                "add references.sources (bundled, materials_project or an entries file)"
            )
        return self

    @property
    def ladder(self) -> list[SimulatorConfig]:
        """The rungs in order, the simulator first; higher rungs are FidelityConfig."""
        return [self.simulator, *self.fidelities[1:]]

    @property
    def elements(self) -> tuple[str, ...]:
        return tuple(sorted({el for cs in self.chemical_systems for el in cs.split("-")}))


def _check_elements(sim: SimulatorConfig, systems: list[str] | None, where: str) -> None:
    """A simulator without parameters for an element of the campaign fails at load, not as a
    failed relaxation of every candidate that has it. Only the registry's static element set
    counts here (GPAW's installed setups are looked up at run time)."""
    supported = get_backend(sim.name).elements
    if supported is None or not systems:
        return
    unsupported = sorted({el for cs in systems for el in cs.split("-")} - supported)
    if unsupported:
        raise ValueError(
            f"'{where}.name' {sim.name!r} has no parameters for {', '.join(unsupported)} "
            f"(from 'chemical_systems'); it supports {', '.join(sorted(supported))}"
        )


# --- Pretraining: teacher-labelled synthetic data and the ensemble trained on it -------------

INIT_SCRATCH = "scratch"
INIT_BUNDLED = "bundled"


class LabelPlanConfig(_Section):
    """How the teacher labels the synthetic set. The target is what screening needs: the
    relaxed formation energy predicted from the unrelaxed structure (IS2RE)."""

    single_points: bool = Field(
        True,
        description="A single point (one teacher call) on every structure; structures that "
        "are not relaxed get their relaxed formation energy from it through the correction "
        "measured on the relaxed ones. false = relaxed structures only.",
    )
    relax_fraction: float = Field(
        0.25,
        ge=0,
        le=1,
        description="Share of the generated structures that are fully relaxed (seeded draw).",
    )
    relax_min: int = Field(
        8,
        ge=0,
        description="Relax at least this many (the correction and the label error are "
        "measured on them).",
    )
    correction: Literal["auto", "linear", "shift", "none"] = Field(
        "auto",
        description="Single-point to relaxed formation energy: linear (a + b*x), shift (x + c), "
        "none, or auto: the one with the lowest leave-one-out error on the relaxed structures "
        "(all three errors go into the data card).",
    )
    max_abs_e_form: float = Field(
        10.0,
        gt=0,
        description="A formation energy beyond this (eV/atom) is a nonsensical label: "
        "discarded, counted in the data card.",
    )
    per_generator: bool = Field(
        True,
        description="Fit the correction separately for each generator with at least 5 relaxed "
        "structures (a substituted prototype sits near its minimum, a random structure far "
        "from it); others use the correction fitted on all.",
    )
    max_label_error: float | None = Field(
        0.3,
        gt=0,
        description="A generator whose corrected single points miss the teacher's relaxed "
        "energies by more than this (leave-one-out MAE, eV/atom) gives no single-point labels: "
        "only its relaxed structures are trained on (counted in the data card). null = keep all.",
    )


class BalanceConfig(_Section):
    """Caps that keep one chemistry or one prototype from dominating the set."""

    max_per_chemsys: int | None = Field(
        None, ge=1, description="Most structures per chemical system; null = no cap."
    )
    max_per_prototype: int | None = Field(
        None,
        ge=1,
        description="Most structures per generator and prototype (random search counts as "
        "one); null = no cap.",
    )


class PretrainConfig(_Section):
    """A pretraining run: synthetic structures over many chemistries, labelled by a teacher
    potential, and the ensemble trained on them (`discovery pretrain`)."""

    name: str = Field(
        ...,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Name of the data set and checkpoint (letters, digits, . _ -).",
    )
    version: str = Field(
        "1",
        min_length=1,
        max_length=40,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Version written into the checkpoint's file name and data card.",
    )
    chemical_systems: list[str] = Field(
        ...,
        min_length=1,
        description="Chemical systems to generate over, e.g. ['Cu-Au', 'Li-Mn-O', 'Na-Cl'].",
    )
    seed: int = Field(0, ge=0, description="Seed for generation, the relaxed subset, training.")
    replay_max: int = Field(
        2000,
        ge=1,
        description="Most training entries written to the replay set beside the checkpoint "
        "(campaigns replay them in fine-tuning); a larger set is sampled, seeded and balanced "
        "across chemical systems.",
    )
    generation: GenerationConfig = Field(
        default_factory=GenerationConfig,
        description="The campaign's generators; budgets are per chemical system.",
    )
    balance: BalanceConfig = Field(default_factory=BalanceConfig)
    teacher: SimulatorConfig = Field(
        default_factory=SimulatorConfig,
        description="The potential that labels the set (sevennet, chgnet; emt for tests).",
    )
    labels: LabelPlanConfig = Field(default_factory=LabelPlanConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    @field_validator("chemical_systems")
    @classmethod
    def _chemsys(cls, v: list[str]) -> list[str]:
        systems = ["-".join(parse_chemsys(s)) for s in v]
        if len(set(systems)) != len(systems):
            raise ValueError("a chemical system appears twice")
        return systems

    @field_validator("teacher")
    @classmethod
    def _teacher_elements(cls, v: SimulatorConfig, info: ValidationInfo) -> SimulatorConfig:
        _check_elements(v, info.data.get("chemical_systems"), "teacher")
        return v

    @field_validator("model")
    @classmethod
    def _starts_from_scratch(cls, v: ModelConfig) -> ModelConfig:
        if v.init != INIT_SCRATCH:
            raise ValueError("pretraining trains from scratch: leave model.init at 'scratch'")
        return v

    @property
    def elements(self) -> tuple[str, ...]:
        return tuple(sorted({el for cs in self.chemical_systems for el in cs.split("-")}))

    @property
    def label(self) -> str:
        """'<name>-v<version>': the checkpoint's and data card's file stem."""
        return f"{self.name}-v{self.version}"


def parse_pretrain_config(data: Any) -> PretrainConfig:
    """The pretraining config in `data`, or a ConfigError naming every problem."""
    return _validate_as(PretrainConfig, data, None, None)


def load_pretrain_config(path: str | Path) -> PretrainConfig:
    """The pretraining config in the YAML file `path`; a ConfigError names every problem with
    its `file:line:column` and dotted field path."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    positions = Positions()
    data = _read_yaml(path, positions)
    config = _validate_as(PretrainConfig, data, positions, str(path))
    return _resolve_generation_paths(config, path.parent, positions)


def dump_pretrain_config(config: PretrainConfig) -> str:
    """The pretraining config as YAML, every default written out."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def _printable(text: str) -> str:
    return text if text.isprintable() else repr(text)[1:-1]


# --- Reading YAML with positions, and reporting every problem ---------------------------------

Loc = tuple[Any, ...]
_M = TypeVar("_M", bound=BaseModel)
_C = TypeVar("_C", "CampaignConfig", "PretrainConfig")
MAX_ECHO = 80  # characters of a bad value shown back in a message


@dataclass(frozen=True)
class Mark:
    """Where something is in a YAML file: 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass
class Positions:
    """Marks of the keys and values of a YAML document, by key path ('model', 'hidden')."""

    keys: dict[Loc, Mark] = field(default_factory=dict)
    values: dict[Loc, Mark] = field(default_factory=dict)
    duplicates: list[tuple[Loc, Mark, Mark]] = field(default_factory=list)

    def update(self, other: Positions) -> None:
        self.keys.update(other.keys)
        self.values.update(other.values)
        self.duplicates.extend(other.duplicates)

    def value(self, loc: Loc) -> Mark | None:
        """The mark of the value at `loc`, or of its nearest ancestor that has one."""
        for k in range(len(loc), -1, -1):
            if loc[:k] in self.values:
                return self.values[loc[:k]]
        return None

    def key(self, loc: Loc) -> Mark | None:
        return self.keys.get(loc) or self.value(loc)


def _mark(file: str, node: yaml.Node) -> Mark:
    return Mark(file, node.start_mark.line + 1, node.start_mark.column + 1)


def _walk(node: yaml.Node, file: str, loc: Loc, out: Positions, seen: set[int]) -> None:
    """Record the marks under `node` and any key that appears twice in one mapping."""
    out.values.setdefault(loc, _mark(file, node))
    if id(node) in seen or len(loc) > 50:  # an alias seen before (recursive anchors)
        return
    seen = seen | {id(node)}
    if isinstance(node, yaml.SequenceNode):
        for k, item in enumerate(node.value):
            _walk(item, file, (*loc, k), out, seen)
    elif isinstance(node, yaml.MappingNode):
        first: dict[Any, Mark] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            try:
                key = yaml.constructor.SafeConstructor().construct_object(key_node)
                hash(key)
            except Exception:  # an invalid key fails the load itself, with its position
                continue
            mark = _mark(file, key_node)
            if key in first:
                out.duplicates.append(((*loc, key), first[key], mark))
                # The later value is the one loaded: its marks replace the first one's.
                for marks in (out.keys, out.values):
                    for sub in [p for p in marks if p[: len(loc) + 1] == (*loc, key)]:
                        del marks[sub]
            first.setdefault(key, mark)
            out.keys[(*loc, key)] = mark
            _walk(value_node, file, (*loc, key), out, seen)


def _read_yaml(path: Path, positions: Positions | None = None) -> Any:
    """The document in `path`; its marks and duplicate keys are added to `positions`."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the file ({err})") from None
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as err:
        raise ConfigError(_reader_error(path, text, err)) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if positions is not None:
            _walk(node, str(path), (), positions, set())
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        what = str(err.problem or "")
        if err.context and err.context_mark:
            at = err.context_mark
            what = f"{err.context} (line {at.line + 1}, column {at.column + 1}): {what}"
        raise ConfigError(f"{where}: not valid YAML: {_printable(what)}") from None
    except yaml.reader.ReaderError as err:
        raise ConfigError(_reader_error(path, text, err)) from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from None
    finally:
        loader.dispose()


def _reader_error(path: Path, text: str, err: yaml.reader.ReaderError) -> str:
    """A character YAML does not allow, with its line and column."""
    before = text[: err.position]
    line, column = before.count("\n") + 1, len(before) - before.rfind("\n")
    return f"{path}:{line}:{column}: not valid YAML: character #x{err.character:04x} is not allowed"


def _dotted(loc: Loc) -> str:
    # A key may hold any text; escape it so the message stays on one line.
    return ".".join(_printable(str(p)) for p in loc) or "(top level)"


def _echo(value: Any) -> str:
    text = repr(value)
    if len(text) > MAX_ECHO:
        text = f"{text[:MAX_ECHO]}... ({len(text)} characters)"
    return _printable(text)


def _model_at(loc: Loc, root: type[BaseModel] | None = None) -> type[BaseModel] | None:
    """The pydantic model whose fields live at `loc` ('model' -> ModelConfig) under `root`
    (default: the campaign)."""
    model: Any = root or CampaignConfig
    for part in loc:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part) if isinstance(part, str) else None
        if info is None:
            return None
        model = _section_type(info.annotation)
        if model is None:
            return None
    return model


def _section_type(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _section_type(arg)
        if found is not None:
            return found
    return None


def _unknown_field(loc: Loc, root: type[BaseModel] | None = None) -> str:
    """'unknown field 'model.widht' (did you mean 'model.width'?)', or the fields allowed."""
    message = f"unknown field '{_dotted(loc)}'"
    model = _model_at(loc[:-1], root)
    if model is None:
        return message
    names = list(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.6)
    if close:
        return f"{message} (did you mean '{_dotted((*loc[:-1], close[0]))}'?)"
    top = "a pretraining config" if root is PretrainConfig else "a campaign"
    where = f"'{_dotted(loc[:-1])}'" if loc[:-1] else top
    return f"{message} (the fields of {where}: {', '.join(names)})"


def _describe(error: Any, root: type[BaseModel] | None = None) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        return _unknown_field(loc, root)
    if kind == "missing":
        return f"missing required field '{_dotted(loc)}'"
    msg = " ".join(error["msg"].split())
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return f"invalid value for '{_dotted(loc)}': {msg} (got {_echo(error.get('input'))})"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config, where it is, and what would be right."""

    text: str
    mark: Mark | None = None

    def __str__(self) -> str:
        return f"{self.mark}: {self.text}" if self.mark else self.text


def _problems(
    err: ValidationError, positions: Positions | None, root: type[BaseModel] | None = None
) -> list[Problem]:
    problems = []
    for error in err.errors():
        loc = tuple(error["loc"])
        mark = None
        if positions is not None:
            mark = positions.key(loc) if error["type"] == "extra_forbidden" else None
            mark = mark or positions.value(loc)
        problems.append(Problem(_describe(error, root), mark))
    return problems


def _duplicate_problems(positions: Positions) -> list[Problem]:
    return [
        Problem(f"duplicate key '{_dotted(loc)}' (first at line {first.line})", again)
        for loc, first, again in positions.duplicates
    ]


def _raise(problems: list[Problem], source: str | None = None) -> NoReturn:
    """A ConfigError: one problem on one line; several as a count and one line each, in the
    order of the file."""
    problems = sorted(
        problems,
        key=lambda p: (p.mark is None, p.mark and (p.mark.file, p.mark.line, p.mark.column)),
    )
    if len(problems) == 1:
        raise ConfigError(str(problems[0]))
    head = f"{source}: {len(problems)} problems" if source else f"{len(problems)} problems"
    raise ConfigError("\n".join([head, *(f"  {p}" for p in problems)]))


def _validate(data: Any, positions: Positions | None, source: str | None) -> CampaignConfig:
    return _validate_as(CampaignConfig, data, positions, source)


def _validate_as(root: type[_M], data: Any, positions: Positions | None, source: str | None) -> _M:
    extra = _duplicate_problems(positions) if positions is not None else []
    if not isinstance(data, dict):
        mark = positions.value(()) if positions is not None else None
        _raise([Problem("config must be a mapping of fields (a YAML dictionary)", mark)], source)
    try:
        config = root.model_validate(data)
    except ValidationError as err:
        _raise(extra + _problems(err, positions, root), source)
    if extra:
        _raise(extra, source)
    return config


def parse_config(data: Any) -> CampaignConfig:
    """The config in `data`, or a ConfigError naming every problem (one per line)."""
    return _validate(data, None, None)


def load_config(path: str | Path) -> CampaignConfig:
    """The config in the YAML file `path`; a ConfigError names every problem with its
    `file:line:column`, dotted field path and what is allowed."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    positions = Positions()
    data = _read_yaml(path, positions)
    if isinstance(data, dict) and "include" in data:
        data = _with_includes(data, path, positions)
    config = _validate(data, positions, str(path))
    return _resolve_paths(config, path.parent, positions)


def _deep_merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _with_includes(data: dict, config_path: Path, positions: Positions) -> dict:
    """`include: [file, ...]` (relative to the config) merged under the config itself, in
    order: e.g. the best model settings that `discovery tune` writes. The config wins."""
    base = config_path.parent
    where = positions.value(("include",))
    includes = data.pop("include")
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list):
        _raise([Problem("invalid value for 'include': a file name or a list of file names", where)])
    merged: dict = {}
    merged_positions = Positions()
    for name in includes:
        path = base / str(name)
        if not path.is_file():
            _raise([Problem(f"invalid value for 'include': file not found: {path}", where)])
        part_positions = Positions()
        part = _read_yaml(path, part_positions)
        if not isinstance(part, dict):
            _raise([Problem(f"invalid value for 'include': {path} is not a YAML mapping", where)])
        merged = _deep_merge(merged, part)
        merged_positions.update(part_positions)
    # The config's own marks win, as its values do.
    merged_positions.update(positions)
    positions.keys, positions.values = merged_positions.keys, merged_positions.values
    positions.duplicates = merged_positions.duplicates
    return _deep_merge(merged, data)


def _resolve_paths(
    config: CampaignConfig, base: Path, positions: Positions | None = None
) -> CampaignConfig:
    """Structure files under references.known are relative to the YAML file, not the cwd; make
    them absolute so the copy saved in the campaign dir still finds them."""
    config = _resolve_generation_paths(config, base, positions)
    init = config.model.init
    if init not in (INIT_SCRATCH, INIT_BUNDLED) and not Path(init).is_absolute():
        model = config.model.model_copy(update={"init": str((base / init).resolve())})
        config = config.model_copy(update={"model": model})
    known = [
        str((base / k).resolve()) if (base / k).is_file() else k for k in config.references.known
    ]
    sources = [_resolved_source(s, base) for s in config.references.sources]
    if known == config.references.known and sources == config.references.sources:
        return config
    refs = config.references.model_copy(update={"known": known, "sources": sources})
    return config.model_copy(update={"references": refs})


def _resolved_source(source: KnownSourceConfig, base: Path) -> KnownSourceConfig:
    """A source's path made absolute against the YAML's folder and checked now, and the
    Materials Project's access checked now, so a campaign that cannot read its known phases
    stops before anything is created, with the source named."""
    if source.kind == "materials_project":
        from discovery.domain.known.materials_project import require_mp_access
        from discovery.domain.known.phase import KnownSourceError

        try:
            require_mp_access(source.api_key)
        except KnownSourceError as err:
            raise ConfigError(f"invalid value for 'references.sources': {err}") from None
        return source
    if source.path is None:
        return source
    path = (base / source.path).resolve()
    if source.kind == "entries" and not path.is_file():
        raise ConfigError(f"invalid value for 'references.sources': entries file {path} not found")
    if source.kind == "structures" and not path.exists():
        raise ConfigError(f"invalid value for 'references.sources': structures {path} not found")
    return source.model_copy(update={"path": str(path)})


def _resolve_generation_paths(config: _C, base: Path, positions: Positions | None = None) -> _C:
    """generation.structures and generation.known, relative to the YAML file, made absolute
    and parsed now, so that a bad file stops the campaign before it starts, by name."""
    from discovery.domain.generation.user_structures import StructureFileError, load_structures

    gen = config.generation
    update = {}
    problems = []
    for name in ("structures", "known"):
        paths = [str((base / p).resolve()) for p in getattr(gen, name)]
        try:
            load_structures(paths, gen.order_disordered)
        except StructureFileError as err:
            mark = positions.value(("generation", name)) if positions is not None else None
            problems.append(Problem(f"invalid value for 'generation.{name}': {err}", mark))
        update[name] = paths
    if problems:
        _raise(problems)
    if all(update[f] == getattr(gen, f) for f in update):
        return config
    return config.model_copy(update={"generation": gen.model_copy(update=update)})


def dump_config(config: CampaignConfig) -> str:
    """The config as YAML, every default written out (what a campaign directory keeps)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
