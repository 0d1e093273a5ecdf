"""The campaign store: SQLAlchemy tables plus the few queries every stage shares."""

from discovery.store.database import Database
from discovery.store.schema import (
    Calculation,
    Campaign,
    Candidate,
    HullResult,
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
    "ModelVersion",
    "Prediction",
    "ReviewDecision",
    "ReviewItem",
    "Round",
]
