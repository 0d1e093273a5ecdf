"""Indexes for a million-candidate store: the open pool ranked by predicted hull distance,
and one de-duplication bucket.

- `predictions (model_version, e_hull_mean)`: the best predictions of one model are read in
  order, so the top of the pending pool costs a walk of the first rows, not a sort of all.
- `candidates (campaign_id, reduced_formula, dedup_key)`: a bucket (formula plus key prefix)
  is one index range instead of every row of the formula across all campaigns.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_predictions_model_version_e_hull_mean",
        "predictions",
        ["model_version", "e_hull_mean"],
    )
    op.create_index(
        "ix_candidates_campaign_formula_dedup_key",
        "candidates",
        ["campaign_id", "reduced_formula", "dedup_key"],
    )


def downgrade() -> None:
    op.drop_index("ix_candidates_campaign_formula_dedup_key", table_name="candidates")
    op.drop_index("ix_predictions_model_version_e_hull_mean", table_name="predictions")
