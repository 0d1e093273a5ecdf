"""The data card of a pretraining set, written next to its checkpoint as JSON and Markdown:
sizes, elements, generators, teacher, label kinds and the label error against the teacher's
full relaxation."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return "n/a"
    return str(value)


def _table(rows: dict[str, Any]) -> list[str]:
    lines = ["| | |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in rows.items()]
    return lines


def _replay_lines(replay: dict[str, Any] | None) -> list[str]:
    if not replay:
        return []
    return [
        "## Replay set",
        f"`{replay['file']}` (sha256 `{replay['sha256'][:16]}...`): {replay['entries']} "
        "teacher-labelled entries that a campaign fine-tuning from this checkpoint mixes in, "
        "weighted below its real data and fewer as real data grows.",
        "",
    ]


def _generator_lines(per_generator: dict[str, dict[str, Any]]) -> list[str]:
    if not per_generator:
        return []
    lines = [
        "Per generator: the correction its single points take, and whether they are trained on "
        "(leave-one-out error within `labels.max_label_error`):",
        "",
        "| generator | relaxed pairs | correction | y = a + b x | LOO MAE (eV/atom) "
        "| single points |",
        "|---|---|---|---|---|---|",
    ]
    for origin, c in per_generator.items():
        error = c["loo_mae"].get(c["method"])
        own = "" if c.get("own") else " (pooled)"
        lines.append(
            f"| {origin} | {c['n_pairs']} | {c['method']}{own} | "
            f"{c['intercept']:.3f} + {c['slope']:.3f} x | {_fmt(error)} | "
            f"{'used' if c['use'] else 'dropped'} |"
        )
    return [*lines, ""]


def markdown(card: dict[str, Any]) -> str:
    """The card as Markdown, for people."""
    labels = card["labels"]
    corr = labels["correction"]
    lines = [
        f"# Data card: {card['name']} v{card['version']}",
        "",
        f"Checkpoint `{card['checkpoint']}` (sha256 `{card['checkpoint_sha256'][:16]}...`), "
        f"written {card['created']}.",
        "",
        "## Set",
        *_table(
            {
                "chemical systems asked": ", ".join(card["chemical_systems"]),
                "elements": ", ".join(labels["elements"]),
                "generated (kept)": card["generation"].get("kept"),
                "labelled entries": labels["entries"],
                "training structures (unrelaxed + relaxed)": labels["training_structures"],
            }
        ),
        "",
        "Label kinds: " + ", ".join(f"{k} {v}" for k, v in labels["label_kinds"].items()),
        "",
        "Generators: " + ", ".join(f"{k} {v}" for k, v in labels["generators"].items()),
        "",
        "Chemical systems: " + ", ".join(f"{k} {v}" for k, v in labels["chemical_systems"].items()),
        "",
        "## Teacher",
        *_table(card["teacher"]),
        "",
        "## Labels",
        "Target: the relaxed formation energy per atom (eV/atom) of the teacher, learnt from "
        "the unrelaxed structure (IS2RE). Structures that were not relaxed carry their "
        f"single-point formation energy through the `{corr['method']}` correction "
        f"(asked: {corr['asked']}), y = {corr['intercept']:.4f} + {corr['slope']:.4f} x.",
        "",
        f"Label error against the teacher's full relaxation, leave-one-out over "
        f"{corr['n_pairs']} relaxed structures (eV/atom):",
        "",
        *_table({f"correction {k}": v for k, v in corr["loo_mae"].items()}),
        "",
        *_generator_lines(labels.get("correction_per_generator") or {}),
        *_table(
            {
                "mean single point - relaxed (eV/atom)": corr["mean_relaxation_drop"],
                "single point, mean s": labels["cost"]["single_point_mean_s"],
                "relaxation, mean s": labels["cost"]["relaxation_mean_s"],
                "relaxation / single point cost": labels["cost"]["relax_over_single"],
            }
        ),
        "",
        "Failed labels by fidelity: " + (_fmt(labels["failed_by_fidelity"]) or "none"),
        "",
        "Discarded as nonsensical: " + (_fmt(labels["discarded_nonsensical"]) or "none"),
        "",
        "## Model",
        *_table({**card["model"], **card["training"]}),
        "",
        *_replay_lines(card.get("replay")),
    ]
    return "\n".join(lines)


def write_card(card: dict[str, Any], json_path: Path) -> Path:
    """Write the card as JSON at `json_path` and as Markdown beside it; the Markdown path."""
    _atomic_write(json_path, json.dumps(card, indent=2, sort_keys=False, default=str) + "\n")
    md = json_path.with_suffix(".md")
    _atomic_write(md, markdown(card))
    return md
