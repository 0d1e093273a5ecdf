"""Static plots logged as MLflow artifacts (matplotlib, Agg backend, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def parity_plot(predicted, simulated, errors, title: str, path: Path) -> Path:
    """Predicted vs simulated formation energy, error bars from the ensemble spread."""
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=110)
    if predicted:
        ax.errorbar(simulated, predicted, yerr=errors, fmt="o", ms=4, alpha=0.8, capsize=2)
        lo = min(min(predicted), min(simulated)) - 0.1
        hi = max(max(predicted), max(simulated)) + 0.1
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
    else:
        ax.text(0.5, 0.5, "no screening model yet (round 0 is random)", ha="center",
                va="center", transform=ax.transAxes, fontsize=8)  # fmt: skip
    ax.set_xlabel("simulated E_form (eV/atom)")
    ax.set_ylabel("predicted E_form (eV/atom)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
