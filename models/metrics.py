"""Matbench Discovery stability-classification metrics and uncertainty-calibration metrics.

Conventions follow matbench-discovery: a material is stable (the positive class) when its energy
above the convex hull is <= the threshold, for the true and for the predicted hull distance
alike. Checked against the stored TP/FP/TN/FN and Precision/Recall/F1/DAF of the leaderboard
YAMLs (e.g. chgnet-0.3.0 full_test_set: Precision = TP/(TP+FP), DAF = Precision / ((TP+FN)/N)).
The leaderboard's unique_prototypes and most_stable_10k DAFs instead divide by a fixed prevalence
of the whole unique-prototype set (about 0.153), which `prevalence=` reproduces."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

STABILITY_THRESHOLD = 0.0  # eV/atom
# Guards divisions by an ensemble spread that happens to collapse to zero.
_STD_FLOOR = 1e-12


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else float("nan")


def _pair(true: ArrayLike, pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    t, p = np.asarray(true, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError(f"expected two 1-d arrays of equal length, got {t.shape} and {p.shape}")
    if not (np.isfinite(t).all() and np.isfinite(p).all()):
        raise ValueError("inputs contain NaN or infinite values")
    return t, p


def regression_metrics(true: ArrayLike, pred: ArrayLike) -> dict[str, float]:
    """MAE, RMSE and R² of `pred` against `true` (R² is NaN for constant targets)."""
    t, p = _pair(true, pred)
    err = p - t
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    return {
        "MAE": float(np.mean(np.abs(err))),
        "RMSE": float(np.sqrt(np.mean(err**2))),
        "R2": 1.0 - float(np.sum(err**2)) / ss_tot if ss_tot else float("nan"),
    }


def stability_metrics(
    e_hull_true: ArrayLike,
    e_hull_pred: ArrayLike,
    threshold: float = STABILITY_THRESHOLD,
    prevalence: float | None = None,
) -> dict[str, float]:
    """Classification of stable (e_hull <= threshold) vs unstable, plus hull-distance errors,
    keyed as in the matbench-discovery leaderboard. DAF = Precision / prevalence, the fraction
    truly stable in these rows unless `prevalence` is given."""
    t, p = _pair(e_hull_true, e_hull_pred)
    true_pos, pred_pos = t <= threshold, p <= threshold
    tp = int(np.sum(true_pos & pred_pos))
    fp = int(np.sum(~true_pos & pred_pos))
    tn = int(np.sum(~true_pos & ~pred_pos))
    fn = int(np.sum(true_pos & ~pred_pos))
    n = tp + fp + tn + fn
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    if prevalence is None:
        prevalence = _ratio(tp + fn, n)
    return {
        "F1": _ratio(2 * precision * recall, precision + recall),
        "DAF": _ratio(precision, prevalence),
        "Precision": precision,
        "Recall": recall,
        "Accuracy": _ratio(tp + tn, n),
        "TPR": recall,
        "FPR": _ratio(fp, fp + tn),
        "TNR": _ratio(tn, tn + fp),
        "FNR": _ratio(fn, fn + tp),
        "TP": tp,
        "FP": fp,
        "TN": tn,
        "FN": fn,
        **regression_metrics(t, p),
    }


def _err_std(errors: ArrayLike, std: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    e, s = _pair(errors, std)
    if np.any(s < 0):
        raise ValueError("standard deviations must be >= 0")
    return e, np.maximum(s, _STD_FLOOR)


def error_std_spearman(errors: ArrayLike, std: ArrayLike) -> float:
    """Rank correlation of |error| with the predicted spread: does the model know when it is
    wrong?"""
    e, s = _err_std(errors, std)
    return float(stats.spearmanr(np.abs(e), s).statistic)


def gaussian_nll(errors: ArrayLike, std: ArrayLike) -> float:
    """Mean negative log-likelihood of the errors under N(0, std^2)."""
    e, s = _err_std(errors, std)
    return float(np.mean(0.5 * np.log(2 * np.pi * s**2) + e**2 / (2 * s**2)))


def miscalibration_area(errors: ArrayLike, std: ArrayLike, n_levels: int = 100) -> float:
    """Area between the observed and the expected fraction of errors inside central Gaussian
    intervals, over confidence levels in (0, 1); 0 is perfect, 0.5 the worst."""
    e, s = _err_std(errors, std)
    expected = np.linspace(0.0, 1.0, n_levels + 1)
    # z-scores of central intervals: level p covers |err| <= z_p * std with z_p = Phi^-1((1+p)/2).
    z = stats.norm.ppf(0.5 + expected / 2)
    observed = np.mean(np.abs(e / s)[:, None] <= z[None, :], axis=0)
    return float(np.trapezoid(np.abs(observed - expected), expected))


def fit_variance_scale(errors: ArrayLike, std: ArrayLike) -> float:
    """The s minimising the NLL of the errors under N(0, (s*std)^2): s^2 = mean(err^2/std^2)."""
    e, s = _err_std(errors, std)
    if e.size == 0:
        raise ValueError("cannot fit a variance scale on no errors")
    return float(np.sqrt(np.mean((e / s) ** 2)))


def calibration_metrics(errors: ArrayLike, std: ArrayLike) -> dict[str, float]:
    """How well the ensemble spread `std` tracks the `errors`: rank correlation,
    miscalibration area and Gaussian negative log-likelihood."""
    return {
        "spearman_abs_err_std": error_std_spearman(errors, std),
        "miscalibration_area": miscalibration_area(errors, std),
        "nll": gaussian_nll(errors, std),
    }
