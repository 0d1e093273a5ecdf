"""SQLAlchemy 2 tables of the campaign store. Portable SQL only: SQLite and PostgreSQL.

A change here needs a new revision in `discovery/store/migrations/versions/` too: stores are
brought to the head revision when opened, and a test compares the two."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (the default of timestamp columns)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Campaign(Base):
    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    config_yaml: Mapped[str] = mapped_column(Text)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="running")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Round(Base):
    __tablename__ = "rounds"
    __table_args__ = (UniqueConstraint("campaign_id", "index"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    index: Mapped[int] = mapped_column(Integer)
    # Last stage whose results are fully committed; resume starts after it.
    stage: Mapped[str] = mapped_column(String(20), default="started")
    screen_model: Mapped[str | None] = mapped_column(String(64))
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Candidate(Base):
    __tablename__ = "candidates"
    __table_args__ = (
        UniqueConstraint("campaign_id", "uid"),
        # One de-duplication bucket (formula, then key prefix) as one index range.
        Index(
            "ix_candidates_campaign_formula_dedup_key",
            "campaign_id",
            "reduced_formula",
            "dedup_key",
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    uid: Mapped[str] = mapped_column(String(64))
    round_index: Mapped[int] = mapped_column(Integer, index=True)
    is_reference: Mapped[bool] = mapped_column(Boolean, default=False)
    structure: Mapped[dict[str, Any]] = mapped_column(JSON)
    formula: Mapped[str] = mapped_column(String(120))
    reduced_formula: Mapped[str] = mapped_column(String(120), index=True)
    chemsys: Mapped[str] = mapped_column(String(120), index=True)
    nsites: Mapped[int] = mapped_column(Integer)
    spacegroup: Mapped[int | None] = mapped_column(Integer)
    origin: Mapped[str] = mapped_column(String(40))
    parent: Mapped[str | None] = mapped_column(String(200))
    origin_detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dedup_key: Mapped[str] = mapped_column(String(160), index=True)
    # generated -> selected -> validated | failed; references stay "reference"
    status: Mapped[str] = mapped_column(String(20), default="generated", index=True)
    # Against the known phases, once validated: "novel", "known" or "new polymorph"; and the
    # known phase a "known" candidate matched.
    novelty: Mapped[str | None] = mapped_column(String(20))
    known_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    predictions: Mapped[list[Prediction]] = relationship(back_populates="candidate")
    calculations: Mapped[list[Calculation]] = relationship(back_populates="candidate")


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("campaign_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    version: Mapped[str] = mapped_column(String(64))
    round_index: Mapped[int] = mapped_column(Integer)
    n_train: Mapped[int] = mapped_column(Integer)
    checkpoint: Mapped[str] = mapped_column(Text)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Prediction(Base):
    __tablename__ = "predictions"
    __table_args__ = (
        UniqueConstraint("candidate_id", "model_version"),
        # The open pool ranked by one model's predicted hull distance, read in index order.
        Index("ix_predictions_model_version_e_hull_mean", "model_version", "e_hull_mean"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"), index=True)
    model_version: Mapped[str] = mapped_column(String(64))
    round_index: Mapped[int] = mapped_column(Integer)
    e_form_mean: Mapped[float] = mapped_column(Float)
    e_form_std: Mapped[float] = mapped_column(Float)
    e_hull_mean: Mapped[float] = mapped_column(Float)
    candidate: Mapped[Candidate] = relationship(back_populates="predictions")


class Calculation(Base):
    __tablename__ = "calculations"
    # One result per (candidate, simulator, fidelity): a retry can never add a duplicate.
    __table_args__ = (UniqueConstraint("candidate_id", "simulator", "fidelity"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"), index=True)
    simulator: Mapped[str] = mapped_column(String(200))
    fidelity: Mapped[str] = mapped_column(String(200))
    round_index: Mapped[int] = mapped_column(Integer)
    ok: Mapped[bool] = mapped_column(Boolean)
    converged: Mapped[bool] = mapped_column(Boolean)
    steps: Mapped[int] = mapped_column(Integer)
    wall_s: Mapped[float] = mapped_column(Float)
    energy: Mapped[float | None] = mapped_column(Float)
    energy_per_atom: Mapped[float | None] = mapped_column(Float)
    forces_max: Mapped[float | None] = mapped_column(Float)
    final_structure: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    # What computed it (simulator, settings, options), hashed: a known phase relaxed once in a
    # store is reused by later campaigns whose rung computes the same way.
    settings_key: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    candidate: Mapped[Candidate] = relationship(back_populates="calculations")


class HullResult(Base):
    __tablename__ = "hull_results"
    __table_args__ = (UniqueConstraint("candidate_id", "fidelity", "round_index"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"), index=True)
    fidelity: Mapped[str] = mapped_column(String(200))
    round_index: Mapped[int] = mapped_column(Integer)
    e_form_per_atom: Mapped[float] = mapped_column(Float)
    e_above_hull: Mapped[float] = mapped_column(Float)
    stable: Mapped[bool] = mapped_column(Boolean)
    decomposition: Mapped[str] = mapped_column(Text, default="")
    # The hull the row's distance is on ("same_fidelity" or "database"), and the distance on
    # the other one where both can be computed.
    hull_mode: Mapped[str] = mapped_column(String(20), default="same_fidelity")
    e_above_hull_other: Mapped[float | None] = mapped_column(Float)


class ReviewItem(Base):
    __tablename__ = "review_queue"
    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"), unique=True)
    round_index: Mapped[int] = mapped_column(Integer)
    rank: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending/approved/rejected
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    candidate: Mapped[Candidate] = relationship()


class ReviewDecision(Base):
    __tablename__ = "review_decisions"
    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"), index=True)
    decision: Mapped[str] = mapped_column(String(20))
    reviewer: Mapped[str] = mapped_column(String(120))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class GraphCacheEntry(Base):
    """Encoded crystal graphs by structure hash and graph settings (models.graph_cache); shared
    by all campaigns of a store, since a structure's graph does not depend on the campaign."""

    __tablename__ = "graph_cache"
    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    payload: Mapped[bytes] = mapped_column(LargeBinary)


class KnownPhaseRow(Base):
    """A known phase fetched from a database (the Materials Project), kept so that a resumed
    or repeated campaign, or a compute node without internet, never needs the network."""

    __tablename__ = "known_phases"
    __table_args__ = (UniqueConstraint("source", "phase_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(40))
    phase_id: Mapped[str] = mapped_column(String(200))
    chemsys: Mapped[str] = mapped_column(String(120), index=True)
    reduced_formula: Mapped[str] = mapped_column(String(120))
    structure: Mapped[dict[str, Any]] = mapped_column(JSON)
    energy_per_atom: Mapped[float | None] = mapped_column(Float)
    energy_scheme: Mapped[str | None] = mapped_column(String(40))
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
