"""Known materials: candidates carry their novelty against the known phases, hull rows their
hull mode and the distance on the other hull, calculations the hash of what computed them,
and fetched database phases are cached in `known_phases`.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("candidates") as batch:
        batch.add_column(sa.Column("novelty", sa.String(20), nullable=True))
        batch.add_column(sa.Column("known_id", sa.String(200), nullable=True))
    with op.batch_alter_table("calculations") as batch:
        batch.add_column(sa.Column("settings_key", sa.String(64), nullable=True))
        batch.create_index("ix_calculations_settings_key", ["settings_key"])
    with op.batch_alter_table("hull_results") as batch:
        batch.add_column(
            sa.Column("hull_mode", sa.String(20), nullable=False, server_default="same_fidelity")
        )
        batch.add_column(sa.Column("e_above_hull_other", sa.Float(), nullable=True))
    op.create_table(
        "known_phases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("phase_id", sa.String(200), nullable=False),
        sa.Column("chemsys", sa.String(120), nullable=False),
        sa.Column("reduced_formula", sa.String(120), nullable=False),
        sa.Column("structure", sa.JSON(), nullable=False),
        sa.Column("energy_per_atom", sa.Float(), nullable=True),
        sa.Column("energy_scheme", sa.String(40), nullable=True),
        sa.Column("provenance", sa.JSON(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "phase_id"),
    )
    op.create_index("ix_known_phases_chemsys", "known_phases", ["chemsys"])


def downgrade() -> None:
    op.drop_index("ix_known_phases_chemsys", table_name="known_phases")
    op.drop_table("known_phases")
    with op.batch_alter_table("hull_results") as batch:
        batch.drop_column("e_above_hull_other")
        batch.drop_column("hull_mode")
    with op.batch_alter_table("calculations") as batch:
        batch.drop_index("ix_calculations_settings_key")
        batch.drop_column("settings_key")
    with op.batch_alter_table("candidates") as batch:
        batch.drop_column("known_id")
        batch.drop_column("novelty")
