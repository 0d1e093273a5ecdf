"""The campaign store: SQLAlchemy tables plus the few queries every stage shares."""

from discovery.store.database import Database
from discovery.store.schema import (
    Calculation,
    Campaign,
    Candidate,
    HullResult,
    KnownPhaseRow,
    ModelVersion,
    Prediction,
    ReviewDecision,
    ReviewItem,
    Round,
)

__all__ = [
    "Calculation",
    "Campaign",
    "Candidate",
    "Database",
    "HullResult",
    "KnownPhaseRow",
    "ModelVersion",
    "Prediction",
    "ReviewDecision",
    "ReviewItem",
    "Round",
]
