"""Reading the shared WBM labels and the published models' predictions (benchmark helpers)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from pymatgen.core import Composition

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "wbm"
DEFAULT_LABELS = DATA / "wbm-dft-labels-sample-shared.csv.gz"
PREDS_DIR = DATA / "model-preds"
E_FORM = "e_form_per_atom_mp2020_corrected"
E_HULL = "e_above_hull_mp2020_corrected_ppd_mp"
COLUMNS = ("material_id", "formula", E_FORM, E_HULL)
# Column suffix in model-preds/*.csv.gz -> leaderboard model name.
PUBLISHED = {
    "chgnet": "chgnet-0.3.0",
    "m3gnet": "m3gnet",
    "mace": "mace-mp-0",
    "orb": "orb-v2",
    "megnet": "megnet",
    "voronoi_rf": "voronoi-rf",
}


def read_labels(path: Path) -> pd.DataFrame:
    """A labels CSV with at least COLUMNS; rows missing any of them are dropped."""
    df = pd.read_csv(path)
    missing = set(COLUMNS) - set(df.columns)
    if missing:
        raise SystemExit(f"{path} lacks column(s): {', '.join(sorted(missing))}")
    return df.dropna(subset=list(COLUMNS)).reset_index(drop=True)


def reduced(formulas: pd.Series) -> list[str]:
    return [Composition(f).reduced_formula for f in formulas]


def published_preds(preds_dir: Path) -> pd.DataFrame:
    """material_id -> e_form_per_atom_<model> columns of every prediction file found."""
    frames = []
    for path in sorted(preds_dir.glob("*.csv.gz")):
        head = pd.read_csv(path, nrows=0).columns
        cols = [c for c in head if c.removeprefix("e_form_per_atom_") in PUBLISHED]
        if cols:
            frames.append(
                pd.read_csv(path, usecols=["material_id", *cols]).set_index("material_id")
            )
    if not frames:
        raise SystemExit(f"no published predictions found in {preds_dir}")
    return pd.concat(frames, axis=1, join="outer")


def model_name(column: str) -> str:
    return PUBLISHED[column.removeprefix("e_form_per_atom_")]
