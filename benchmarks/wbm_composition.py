"""Composition-only ensemble on WBM stability, against published models on the same rows.

    python benchmarks/wbm_composition.py                       # shared WBM sample, grouped split
    python benchmarks/wbm_composition.py --labels L.csv --test-labels T.csv

Without --test-labels the labels are split ~80/20 with no reduced formula on both sides. The
predicted hull distance of every model is e_hull_dft + (e_form_pred - e_form_dft), as in
matbench-discovery. Writes the JSON given by --out and a parity PNG next to it.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from wbm_data import (  # noqa: E402
    DEFAULT_LABELS,
    E_FORM,
    E_HULL,
    PREDS_DIR,
    model_name,
    published_preds,
    read_labels,
    reduced,
)

from models import CompositionSettings, Ensemble, TrainSettings  # noqa: E402
from models.metrics import (  # noqa: E402
    calibration_metrics,
    fit_variance_scale,
    stability_metrics,
)
from models.splits import grouped_split  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OURS_KEYS = ("F1", "DAF", "Precision", "Recall", "Accuracy", "MAE", "RMSE", "R2")
PUBLISHED_KEYS = ("F1", "DAF", "Precision", "Recall", "MAE")
TEST_FRACTION = 0.2
# Held out of the training rows to fit the variance scale; the early-stopping split inside
# Ensemble.fit is separate, so the scale is fitted on rows nothing was tuned on.
CALIB_FRACTION = 0.1

log = logging.getLogger("wbm_composition")


def pick(metrics: dict, keys: tuple[str, ...]) -> dict:
    return {k: metrics[k] for k in keys}


def parity_plot(dft: np.ndarray, pred: np.ndarray, std: np.ndarray, path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 5))
    sc = ax.scatter(dft, pred, c=std, s=4, cmap="viridis", alpha=0.7)
    lo, hi = float(min(dft.min(), pred.min())), float(max(dft.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set_xlabel("DFT formation energy (eV/atom)")
    ax.set_ylabel("predicted formation energy (eV/atom)")
    ax.set_title(title, fontsize=9)
    fig.colorbar(sc, ax=ax, label="ensemble std (eV/atom)")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=DEFAULT_LABELS)
    parser.add_argument("--test-labels", type=Path, default=None)
    parser.add_argument("--preds-dir", type=Path, default=PREDS_DIR)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--patience", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks/results/wbm_composition.json"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # The models are tiny: intra-op threads only oversubscribe a shared machine.
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    labels = read_labels(args.labels)
    if args.test_labels is not None:
        train, test = labels, read_labels(args.test_labels)
    else:
        train_idx, test_idx = grouped_split(reduced(labels.formula), TEST_FRACTION, args.seed)
        train, test = labels.iloc[train_idx], labels.iloc[test_idx]
    overlap = set(reduced(train.formula)) & set(reduced(test.formula))
    log.info(
        "train %d rows, test %d rows, shared reduced formulas %d",
        len(train),
        len(test),
        len(overlap),
    )

    preds = published_preds(args.preds_dir)
    test = test.join(preds, on="material_id")
    pred_cols = list(preds.columns)
    n_before = len(test)
    # Every model is scored on exactly the same rows.
    test = test.dropna(subset=pred_cols).reset_index(drop=True)
    log.info("test rows with every published prediction: %d of %d", len(test), n_before)

    fit_idx, calib_idx = grouped_split(reduced(train.formula), CALIB_FRACTION, args.seed + 1)
    fit_rows, calib_rows = train.iloc[fit_idx], train.iloc[calib_idx]

    settings = CompositionSettings(hidden=args.hidden, layers=args.layers)
    train_settings = TrainSettings(
        epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, patience=args.patience
    )
    ensemble = Ensemble(settings, n_members=args.members, seed=args.seed, device="cpu")
    report = ensemble.fit(list(fit_rows.formula), list(fit_rows[E_FORM]), train_settings)

    def predict(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        out = ensemble.predict(list(rows.formula), batch_size=512)
        return np.array([p.mean for p in out]), np.array([p.std for p in out])

    calib_mean, calib_std = predict(calib_rows)
    scale = fit_variance_scale(calib_mean - calib_rows[E_FORM].to_numpy(), calib_std)
    mean, std = predict(test)
    dft_form, dft_hull = test[E_FORM].to_numpy(), test[E_HULL].to_numpy()
    err = mean - dft_form
    ours = pick(stability_metrics(dft_hull, dft_hull + err), OURS_KEYS)
    ours["calibration_raw"] = calibration_metrics(err, std)
    ours["calibration_scaled"] = calibration_metrics(err, scale * std)
    ours["variance_scale"] = scale

    published = {
        model_name(col): pick(
            stability_metrics(dft_hull, dft_hull + test[col].to_numpy() - dft_form),
            PUBLISHED_KEYS,
        )
        for col in pred_cols
    }
    wall = time.perf_counter() - started
    result = {
        "test_rows": len(test),
        "ours": ours,
        "published": published,
        "train_rows": len(fit_rows),
        "calibration_rows": len(calib_rows),
        "test_rows_dropped_missing_published": n_before - len(test),
        "stable_fraction_test": float(np.mean(dft_hull <= 0)),
        "labels": str(args.labels),
        "test_labels": str(args.test_labels) if args.test_labels else None,
        "split": "given" if args.test_labels else f"grouped by reduced formula, seed {args.seed}",
        "model": {"kind": "composition", **settings.to_dict(), "members": args.members},
        "train": {
            **train_settings.to_dict(),
            "epochs_run": report.epochs_run,
            "train_mae": report.train_mae,
            "val_mae": report.val_mae,
            "fit_wall_s": report.wall_s,
        },
        "wall_s": wall,
        "threads": args.threads,
        "host": {"python": platform.python_version(), "torch": torch.__version__},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    chgnet_f1 = published.get("chgnet-0.3.0", {}).get("F1", float("nan"))
    parity_plot(
        dft_form,
        mean,
        std,
        args.out.with_suffix(".png"),
        f"composition ensemble, {len(test)} WBM test rows: MAE {ours['MAE']:.3f} eV/atom, "
        f"F1 {ours['F1']:.3f} (CHGNet-0.3.0 {chgnet_f1:.3f})",
    )
    log.info(
        "ours F1 %.3f DAF %.3f MAE %.3f | wall %.0f s", ours["F1"], ours["DAF"], ours["MAE"], wall
    )
    for name, m in published.items():
        log.info("%-14s F1 %.3f DAF %.3f MAE %.3f", name, m["F1"], m["DAF"], m["MAE"])


if __name__ == "__main__":
    main()
