"""Baseline: the store as `Base.metadata.create_all` made it before migrations existed.

Every table and index is created only if missing, so that the same revision also adopts a
store made before Alembic (whose oldest versions lack `graph_cache`): it fills in what is
missing and leaves tables and their data alone.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def _table(name: str, *items) -> None:
    op.create_table(name, *items, if_not_exists=True)


def _index(table: str, column: str) -> None:
    op.create_index(f"ix_{table}_{column}", table, [column], if_not_exists=True)


def upgrade() -> None:
    _table(
        "campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("config_yaml", sa.Text(), nullable=False),
        sa.Column("mlflow_run_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    _table(
        "graph_cache",
        sa.Column("key", sa.String(120), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    _table(
        "candidates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(64), nullable=False),
        sa.Column("round_index", sa.Integer(), nullable=False),
        sa.Column("is_reference", sa.Boolean(), nullable=False),
        sa.Column("structure", sa.JSON(), nullable=False),
        sa.Column("formula", sa.String(120), nullable=False),
        sa.Column("reduced_formula", sa.String(120), nullable=False),
        sa.Column("chemsys", sa.String(120), nullable=False),
        sa.Column("nsites", sa.Integer(), nullable=False),
        sa.Column("spacegroup", sa.Integer(), nullable=True),
        sa.Column("origin", sa.String(40), nullable=False),
        sa.Column("parent", sa.String(200), nullable=True),
        sa.Column("origin_detail", sa.JSON(), nullable=False),
        sa.Column("dedup_key", sa.String(160), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "uid"),
    )
    for column in (
        "campaign_id",
        "chemsys",
        "dedup_key",
        "reduced_formula",
        "round_index",
        "status",
    ):
        _index("candidates", column)
    _table(
        "model_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("round_index", sa.Integer(), nullable=False),
        sa.Column("n_train", sa.Integer(), nullable=False),
        sa.Column("checkpoint", sa.Text(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("mlflow_run_id", sa.String(64), nullable=True),
        sa.Column("created_at", _TZ, nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "version"),
    )
    _table(
        "rounds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.Column("screen_model", sa.String(64), nullable=True),
        sa.Column("mlflow_run_id", sa.String(64), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("started_at", _TZ, nullable=False),
        sa.Column("finished_at", _TZ, nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "index"),
    )
    _table(
        "calculations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("simulator", sa.String(200), nullable=False),
        sa.Column("fidelity", sa.String(200), nullable=False),
        sa.Column("round_index", sa.Integer(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("converged", sa.Boolean(), nullable=False),
        sa.Column("steps", sa.Integer(), nullable=False),
        sa.Column("wall_s", sa.Float(), nullable=False),
        sa.Column("energy", sa.Float(), nullable=True),
        sa.Column("energy_per_atom", sa.Float(), nullable=True),
        sa.Column("forces_max", sa.Float(), nullable=True),
        sa.Column("final_structure", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", _TZ, nullable=False),
        sa.ForeignKeyConstraint(["candidate_id"], ["candidates.id"]),
        sa.PrimaryKeyConstraint("id"),
        # One result per (candidate, simulator, fidelity): a retry can never add a duplicate.
        sa.UniqueConstraint("candidate_id", "simulator", "fidelity"),
    )
    _index("calculations", "candidate_id")
    _table(
        "hull_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("fidelity", sa.String(200), nullable=False),
        sa.Column("round_index", sa.Integer(), nullable=False),
        sa.Column("e_form_per_atom", sa.Float(), nullable=False),
        sa.Column("e_above_hull", sa.Float(), nullable=False),
        sa.Column("stable", sa.Boolean(), nullable=False),
        sa.Column("decomposition", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["candidate_id"], ["candidates.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("candidate_id", "fidelity", "round_index"),
    )
    _index("hull_results", "candidate_id")
    _table(
        "predictions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("round_index", sa.Integer(), nullable=False),
        sa.Column("e_form_mean", sa.Float(), nullable=False),
        sa.Column("e_form_std", sa.Float(), nullable=False),
        sa.Column("e_hull_mean", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["candidate_id"], ["candidates.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("candidate_id", "model_version"),
    )
    _index("predictions", "candidate_id")
    _table(
        "review_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("reviewer", sa.String(120), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.ForeignKeyConstraint(["candidate_id"], ["candidates.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    _index("review_decisions", "candidate_id")
    _table(
        "review_queue",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("round_index", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.ForeignKeyConstraint(["candidate_id"], ["candidates.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("candidate_id"),
    )


def downgrade() -> None:
    for table in (
        "review_queue",
        "review_decisions",
        "predictions",
        "hull_results",
        "calculations",
        "rounds",
        "model_versions",
        "candidates",
        "graph_cache",
        "campaigns",
    ):
        op.drop_table(table)
