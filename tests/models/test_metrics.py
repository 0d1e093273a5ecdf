"""Tests for models.metrics: stability classification, regression and calibration metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from models.metrics import (
    calibration_metrics,
    fit_variance_scale,
    gaussian_nll,
    miscalibration_area,
    stability_metrics,
)


def test_confusion_matrix_by_hand():
    # stable = e_hull <= 0, including exactly 0 on both sides.
    true = np.array([-0.1, 0.0, -0.05, 0.2, 0.3, 0.1, -0.2, 0.4])
    pred = np.array([-0.2, -0.01, 0.1, -0.1, 0.2, 0.0, -0.3, 0.5])
    # TP: 0, 1, 6   FN: 2   FP: 3, 5   TN: 4, 7
    m = stability_metrics(true, pred)
    assert (m["TP"], m["FP"], m["TN"], m["FN"]) == (3, 2, 2, 1)
    precision, recall = 3 / 5, 3 / 4
    assert m["Precision"] == pytest.approx(precision)
    assert m["Recall"] == pytest.approx(recall)
    assert m["TPR"] == pytest.approx(recall)
    assert m["FNR"] == pytest.approx(1 / 4)
    assert m["FPR"] == pytest.approx(2 / 4)
    assert m["TNR"] == pytest.approx(2 / 4)
    assert m["Accuracy"] == pytest.approx(5 / 8)
    assert m["F1"] == pytest.approx(2 * precision * recall / (precision + recall))
    assert m["DAF"] == pytest.approx(precision / (4 / 8))
    err = pred - true
    assert m["MAE"] == pytest.approx(np.abs(err).mean())
    assert m["RMSE"] == pytest.approx(np.sqrt((err**2).mean()))
    assert m["R2"] == pytest.approx(1 - (err**2).sum() / ((true - true.mean()) ** 2).sum())


def test_no_predicted_positives_gives_nan_not_error():
    m = stability_metrics([-0.1, 0.2], [0.1, 0.2])
    assert m["TP"] == 0 and math.isnan(m["Precision"]) and math.isnan(m["F1"])


def test_rejects_mismatched_or_non_finite_inputs():
    with pytest.raises(ValueError):
        stability_metrics([0.1, 0.2], [0.1])
    with pytest.raises(ValueError):
        stability_metrics([0.1, float("nan")], [0.1, 0.2])


def test_definitions_match_leaderboard_yaml(shared_data):
    path = shared_data / "leaderboard" / "models" / "chgnet" / "chgnet-0.3.0.yml"
    discovery = yaml.safe_load(path.read_text())["metrics"]["discovery"]
    # The subsets other than the full test set compute DAF against the prevalence of the whole
    # unique-prototype set, not of their own rows (see the models.metrics docstring).
    prototype_prevalence = 0.1529
    for subset, prevalence in [
        ("full_test_set", None),
        ("unique_prototypes", prototype_prevalence),
        ("most_stable_10k", prototype_prevalence),
    ]:
        stored = discovery[subset]
        tp, fp, tn, fn = (stored[k] for k in ("TP", "FP", "TN", "FN"))
        # Rebuild label arrays realising the stored confusion matrix and recompute everything.
        true = np.repeat([-1.0, 1.0, 1.0, -1.0], [tp, fp, tn, fn])
        pred = np.repeat([-1.0, -1.0, 1.0, 1.0], [tp, fp, tn, fn])
        m = stability_metrics(true, pred, prevalence=prevalence)
        for key in ("F1", "DAF", "Precision", "Recall", "Accuracy", "TPR", "FPR", "TNR", "FNR"):
            # The YAML rounds to three decimals; DAF is a ratio of rounded numbers.
            tol = 5e-3 if key == "DAF" else 1.5e-3
            assert m[key] == pytest.approx(stored[key], abs=tol), (subset, key)


def test_variance_scale_closed_form_minimises_nll():
    rng = np.random.default_rng(0)
    std = rng.uniform(0.05, 0.2, 2000)
    errors = 2.5 * std * rng.standard_normal(2000)
    s = fit_variance_scale(errors, std)
    assert s == pytest.approx(np.sqrt(np.mean((errors / std) ** 2)))
    assert s == pytest.approx(2.5, rel=0.05)
    nll = gaussian_nll(errors, s * std)
    for factor in (0.9, 1.1):
        assert gaussian_nll(errors, factor * s * std) > nll


def test_calibration_metrics_on_calibrated_and_overconfident_errors():
    rng = np.random.default_rng(1)
    std = rng.uniform(0.05, 0.5, 5000)
    errors = std * rng.standard_normal(5000)
    calibrated = calibration_metrics(errors, std)
    assert calibrated["miscalibration_area"] < 0.02
    assert calibrated["spearman_abs_err_std"] > 0.3
    assert miscalibration_area(errors, 0.2 * std) > 0.3
    expected_nll = np.mean(0.5 * np.log(2 * np.pi * std**2) + errors**2 / (2 * std**2))
    assert calibrated["nll"] == pytest.approx(expected_nll)


def test_a_training_report_logs_as_one_readable_line():
    from models.records import TrainReport

    report = TrainReport(
        n_train=44, n_val=10, epochs_run=[59, 52, 80], train_mae=0.48031917, val_mae=0.2070331,
        wall_s=30.584, variance_scale=2.66338, calibration={"miscalibration_area": 0.067},
    )  # fmt: skip
    line = report.summary()
    assert "\n" not in line and "TrainReport(" not in line
    assert line == (
        "44 train + 10 val, MAE train 0.480 val 0.207 eV/atom, epochs 59/52/80, spread x2.66, "
        "miscalibration 0.067, 30.6 s"
    )
