"""Known phases against the Materials Project: the engine's hull of the bundled Li-Mn-O phases,
and whether a campaign rediscovers a stable phase hidden from its references.

    python benchmarks/known_hull.py                        # both parts, as recorded
    python benchmarks/known_hull.py --smoke                # tiny settings, a few minutes
    python benchmarks/known_hull.py --work runs/kh         # keep the stores there

Part 1 (hull): every bundled phase (`discovery/data/known/`) and the elemental polymorphs are
relaxed by the hull simulator (SevenNet-0, the default `simulator.name`) with the quickstart's
settings and MP2020-corrected formation energies, and the same_fidelity hull is built from
them. Per phase: the engine's formation energy and distance to the hull next to MP's
values where a real MP number exists:
- the six MP Mn-O entries carry MP2020 energies (their MP e_above_hull is 0: all six are on
  the Mn-O hull of that file);
- the MP hull formation energy at a composition is also derived from the shared WBM labels
  (`e_form_per_atom_mp2020_corrected - e_above_hull_mp2020_corrected_ppd_mp`, MP v2022.10.28)
  where the reduced formula occurs there.

Part 2 (rediscovery): the quickstart campaign (`campaigns/quickstart.yaml`, only its name,
simulator and `references.exclude` changed) is run once per hidden phase; its candidates are
matched against the hidden phase's structure with the novelty matcher.

All campaigns share one SQLite store, so the references relaxed in part 1 are copied, not
relaxed again, by the part-2 campaigns of the same simulator. Writes
benchmarks/results/known_hull.json and known_hull.png.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from pymatgen.analysis.structure_matcher import ElementComparator, StructureMatcher  # noqa: E402
from pymatgen.core import Composition  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from discovery.config import CampaignConfig, load_config  # noqa: E402
from discovery.domain.known.bundled import bundled_phases  # noqa: E402
from discovery.domain.known.novelty import NoveltyIndex  # noqa: E402
from discovery.engine import reference_set  # noqa: E402
from discovery.engine.campaign_directory import CampaignDirectory  # noqa: E402
from discovery.engine.campaign_hull import SAME_FIDELITY, current_hull  # noqa: E402
from discovery.engine.known_phases import known_phases  # noqa: E402
from discovery.engine.progress import StageProgress  # noqa: E402
from discovery.engine.round_loop import open_context, run_campaign  # noqa: E402
from discovery.frontends.reference_report import database_hull  # noqa: E402
from discovery.store import Calculation, Candidate, HullResult  # noqa: E402
from discovery.store.convert import structure_from_json  # noqa: E402
from discovery.store.queries import validated_pairs  # noqa: E402
from discovery.store.schema import ReviewItem  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
QUICKSTART = ROOT / "campaigns" / "quickstart.yaml"
WBM_LABELS = Path("/work/shared/data/wbm/wbm-dft-labels-sample-shared.csv.gz")
ELEMENTS = ["Li", "Mn", "O"]
# Engine-stable: within this of the engine's own same_fidelity hull (eV/atom).
STABLE_TOL = 0.025
# The six MP Mn-O entries (shared/data/mp/Mn-O_entries.json): MP ground states, each on
# that file's Mn-O hull. The data card names no other bundled phase as an MP ground state.
MP_STABLE = ("mp-35", "mp-12957", "mp-19006", "mp-18759", "mp-1172875", "mp-19395")
# Hidden in turn in part 2: two ternaries and the peroxide.
HIDE = ("lit-LiMn2O4-spinel", "lit-Li2MnO3", "pymatgen-Li2O2")

log = logging.getLogger("known_hull")


def campaign_config(name: str, simulator: str, store: Path, **changes) -> CampaignConfig:
    """The quickstart config with another name, simulator and a shared store."""
    data = load_config(QUICKSTART).model_dump(mode="json")
    data["name"] = name
    data["simulator"]["name"] = simulator
    data["store"] = {"url": f"sqlite:///{store.resolve()}"}
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            data[section][field] = value
        else:
            data[section] = value
    return CampaignConfig.model_validate(data)


# ---------------------------------------------------------------- part 1: the hull


def wbm_hull_energies(path: Path) -> dict[str, dict]:
    """MP hull formation energy (eV/atom) at each Li-Mn-O reduced formula of the WBM sample:
    e_form - e_above_hull of any row of that formula (the rows of one formula agree within
    the labels' 3-decimal rounding; their mean is taken)."""
    if not path.is_file():
        return {}
    df = pd.read_csv(path)
    systems = {"Li", "Mn", "O", "Li-Mn", "Li-O", "Mn-O", "Li-Mn-O"}
    df = df[df.chemsys.isin(systems)].copy()
    df["reduced"] = [Composition(f).reduced_formula for f in df.formula]
    df["hull"] = df.e_form_per_atom_mp2020_corrected - df.e_above_hull_mp2020_corrected_ppd_mp
    out = {}
    for formula, group in df.groupby("reduced"):
        out[formula] = {
            "e_hull_form_per_atom": round(float(group.hull.mean()), 4),
            "spread": round(float(group.hull.max() - group.hull.min()), 4),
            "wbm_ids": list(group.material_id),
        }
    return out


def hull_part(work: Path, simulator: str, **changes) -> dict:
    """Relax every reference (bundled phases and elemental polymorphs) with `simulator` and
    compare the engine's same_fidelity hull with MP."""
    changes = {**changes, "rounds": 1}
    config = campaign_config(f"known-hull-{simulator}", simulator, work / "store.db", **changes)
    location = CampaignDirectory(work / f"hull-{simulator}")
    location.preflight(config)
    phases = known_phases(config)
    with location.setting_up(config):
        location.prepare(config)
        ctx = open_context(config, location, StageProgress(False))
    t0 = time.perf_counter()
    try:
        reference_set.ensure_references(ctx, phases)
    finally:
        ctx.close()
    wall = time.perf_counter() - t0
    mu = reference_set.chemical_potential_report(ctx)
    fidelity = config.ladder[0].fidelity
    with ctx.db.session() as session:
        hull, e_form = current_hull(ctx, session, 0, SAME_FIDELITY)
        pairs = validated_pairs(session, ctx.campaign_id, fidelity)
        calcs = {c.id: (c, k) for c, k in pairs}
        refs = session.scalars(
            select(Candidate).where(
                Candidate.campaign_id == ctx.campaign_id, Candidate.is_reference.is_(True)
            )
        ).all()
        failed = session.execute(
            select(Candidate.parent, Calculation.error)
            .join(Calculation, Calculation.candidate_id == Candidate.id)
            .where(Candidate.campaign_id == ctx.campaign_id, Calculation.ok.is_(False))
        ).all()
        by_phase = {c.parent: c for c in refs if c.origin == "known"}
        points = {cid: hull.point(cid) for cid in e_form}
        elemental = [
            {
                "uid": c.uid,
                "formula": c.formula,
                "e_form_per_atom": _r(e_form.get(c.id)),
                "e_above_hull": _r(points[c.id].e_above_hull) if c.id in points else None,
            }
            for c in refs
            if c.origin != "known"
        ]
    ctx.db.dispose()

    mp_db = database_hull(phases, ELEMENTS)
    mp_rows = {row.phase.id: row for row in (mp_db[1] if mp_db else [])}
    wbm = wbm_hull_energies(WBM_LABELS)
    rows = []
    for phase in phases:
        cand = by_phase.get(phase.id)
        point = points.get(cand.id) if cand is not None else None
        calc = calcs.get(cand.id, (None, None))[1] if cand is not None else None
        formula = phase.reduced_formula
        mp = mp_rows.get(phase.id)
        w = wbm.get(formula)
        row = {
            "id": phase.id,
            "formula": formula,
            "sites": len(phase.structure),
            "relaxed": point is not None,
            "converged": calc.converged if calc is not None else None,
            "steps": calc.steps if calc is not None else None,
            "relax_wall_s": _r(calc.wall_s, 2) if calc is not None else None,
            "engine_e_form": _r(point.e_form_per_atom) if point else None,
            "engine_e_above_hull": _r(point.e_above_hull) if point else None,
            "engine_hull_e_form_at_composition": (
                _r(point.e_form_per_atom - point.e_above_hull) if point else None
            ),
            "engine_decomposition": point.decomposition if point else None,
            "engine_stable": point.e_above_hull <= STABLE_TOL if point else None,
            "mp_e_form": _r(mp.e_form_per_atom) if mp else None,
            "mp_e_above_hull": _r(mp.e_above_hull) if mp else None,
            "mp_e_above_hull_source": "shared/data/mp/Mn-O_entries.json" if mp else None,
            "mp_hull_e_form_wbm": w["e_hull_form_per_atom"] if w else None,
            "mp_value_missing_because": None,
        }
        if mp is None and w is None:
            row["mp_value_missing_because"] = (
                "no MP energy for this structure offline (data card) and its formula is not in "
                "the WBM label sample"
            )
        elif mp is None:
            row["mp_value_missing_because"] = (
                "no MP energy for this structure offline; only MP's hull energy at its "
                "composition (WBM) is known, not its own MP e_above_hull"
            )
        if point and mp:
            row["d_e_form"] = _r(point.e_form_per_atom - mp.e_form_per_atom)
            row["d_e_above_hull"] = _r(point.e_above_hull - mp.e_above_hull)
        if point and w:
            row["d_hull_e_form_wbm"] = _r(
                point.e_form_per_atom - point.e_above_hull - w["e_hull_form_per_atom"]
            )
        rows.append(row)

    def mae(key: str, per_formula: bool = False) -> dict:
        # The hull energy at a composition is one number per formula, however many phases.
        vals = {(r["formula"] if per_formula else r["id"]): abs(r[key]) for r in rows
                if r.get(key) is not None}  # fmt: skip
        return {"mae": _r(sum(vals.values()) / len(vals)) if vals else None, "n": len(vals)}

    wbm_formulas = sorted({r["formula"] for r in rows if r["mp_hull_e_form_wbm"] is not None})
    mp_stable = [r for r in rows if r["id"] in MP_STABLE]
    return own_element_offsets({
        "simulator": simulator,
        "fidelity": fidelity,
        "hull_mode": SAME_FIDELITY,
        "formation_energy": config.simulator.formation_energy,
        "relax_settings": {"fmax": config.simulator.fmax, "max_steps": config.simulator.max_steps},
        "stable_tolerance_eV_per_atom": STABLE_TOL,
        "wall_s_references": _r(wall, 1),
        "n_phases": len(rows),
        "phases": rows,
        "elemental_polymorphs": elemental,
        "failed_relaxations": [{"phase": p, "error": (e or "")[:200]} for p, e in failed],
        "chemical_potentials_vs_mp": {k: _r(v) for k, v in mu.items()},
        "mae": {
            "e_form_vs_mp_entries": mae("d_e_form"),
            "e_above_hull_vs_mp_entries": mae("d_e_above_hull"),
            "hull_e_form_at_composition_vs_wbm": mae("d_hull_e_form_wbm", per_formula=True),
            "wbm_formulas": wbm_formulas,
        },
        "wbm_hull_energies": wbm,
        "mp_stable_phases": list(MP_STABLE),
        "mp_stable_found_stable": [r["id"] for r in mp_stable if r["engine_stable"]],
        "mp_stable_not_found_stable": [r["id"] for r in mp_stable if not r["engine_stable"]],
        "engine_stable_phases": [r["id"] for r in rows if r["engine_stable"]],
    })  # fmt: skip


def own_element_offsets(hull: dict) -> dict:
    """Add, per MP entry, the formation-energy difference once the simulator's own elemental
    offsets from MP (mu_minus_mp_*) are taken out: what is left where the simulator's
    energies are shifted alike for elements and compounds. Derived from recorded numbers
    only; `--resummarise` applies it to an existing JSON."""
    mu = hull["chemical_potentials_vs_mp"]
    vals = []
    for row in hull["phases"]:
        if row.get("d_e_form") is None:
            continue
        frac = Composition(row["formula"]).fractional_composition
        shift = sum(x * mu[f"mu_minus_mp_{el.symbol}"] for el, x in frac.items())
        row["d_e_form_own_elements"] = _r(row["d_e_form"] - shift)
        vals.append(abs(row["d_e_form_own_elements"]))
    hull["mae"]["e_form_vs_mp_entries_own_elements"] = {
        "mae": _r(sum(vals) / len(vals)) if vals else None,
        "n": len(vals),
        "note": "d_e_form minus the composition-weighted mu_minus_mp of the elements",
    }
    return hull


def _r(x, nd: int = 4):
    return None if x is None else round(float(x), nd)


# ---------------------------------------------------------------- part 2: rediscovery


def loose_matcher() -> StructureMatcher:
    """Wider tolerances than novelty's, only to name the closest candidate when none matches."""
    return StructureMatcher(
        ltol=0.3, stol=0.5, angle_tol=10.0, primitive_cell=True, scale=True,
        attempt_supercell=True, comparator=ElementComparator(),
    )  # fmt: skip


def reachability(run: dict) -> dict:
    """Whether the quickstart's generators can produce the hidden phase at all: its formula
    among the enumerated compositions (charge balance by smact, which gives each element
    one oxidation state), and its primitive cell within `generation.max_sites`. Derived from
    the config alone; `--resummarise` applies it to an existing JSON."""
    from discovery.domain.generation.compositions import enumerate_compositions

    gen = load_config(QUICKSTART).generation
    comps = enumerate_compositions(
        tuple(ELEMENTS), gen.compositions.max_atoms, gen.compositions.charge_balanced
    )
    formulas = {c.reduced_formula for c in comps}
    run["n_enumerated_compositions"] = len(formulas)
    run["formula_in_enumerated_compositions"] = run["formula"] in formulas
    return run


def rediscovery_run(
    work: Path, hidden_id: str, simulator: str, hull_result: dict | None, **changes
) -> dict:
    hidden = next(p for p in bundled_phases(ELEMENTS) if p.id == hidden_id)
    formula = hidden.reduced_formula
    config = campaign_config(
        f"rediscover-{hidden_id}-{simulator}", simulator, work / "store.db",
        references__exclude=[hidden_id], **changes,
    )  # fmt: skip
    directory = work / f"hide-{hidden_id}-{simulator}"
    t0 = time.perf_counter()
    ctx = run_campaign(config, directory, StageProgress(False))
    wall = time.perf_counter() - t0
    index = NoveltyIndex([hidden])
    loose = loose_matcher()
    fidelity = config.ladder[0].fidelity
    with ctx.db.session() as session:
        cands = session.scalars(
            select(Candidate).where(
                Candidate.campaign_id == ctx.campaign_id,
                Candidate.is_reference.is_(False),
                Candidate.reduced_formula == formula,
            )
        ).all()
        queued = set(session.scalars(select(ReviewItem.candidate_id)))
        statuses = session.scalars(
            select(Candidate.status).where(
                Candidate.campaign_id == ctx.campaign_id, Candidate.is_reference.is_(False)
            )
        ).all()
        n_generated_all = len(statuses)
        n_validated_all = sum(1 for s in statuses if s == "validated")
        n_queued_all = session.scalar(
            select(func.count(ReviewItem.id))
            .join(Candidate, Candidate.id == ReviewItem.candidate_id)
            .where(Candidate.campaign_id == ctx.campaign_id)
        )
        rows = []
        for c in cands:
            calc = session.scalars(
                select(Calculation)
                .where(
                    Calculation.candidate_id == c.id,
                    Calculation.fidelity == fidelity,
                    Calculation.ok.is_(True),
                )
                .order_by(Calculation.id.desc())
            ).first()
            hr = session.scalars(
                select(HullResult)
                .where(HullResult.candidate_id == c.id, HullResult.fidelity == fidelity)
                .order_by(HullResult.round_index.desc())
            ).first()
            start = structure_from_json(c.structure)
            relaxed = structure_from_json(calc.final_structure) if calc else None
            rms = loose.get_rms_dist(relaxed or start, hidden.structure)
            rows.append(
                {
                    "uid": c.uid,
                    "round": c.round_index,
                    "origin": c.origin,
                    "status": c.status,
                    "engine_novelty": c.novelty,
                    "spacegroup_generated": c.spacegroup,
                    "nsites": c.nsites,
                    "matches_as_generated": index.match(start) is not None,
                    "matches_relaxed": relaxed is not None and index.match(relaxed) is not None,
                    "loose_rms": _r(rms[0]) if rms else None,
                    "e_above_hull": _r(hr.e_above_hull) if hr else None,
                    "stable": hr.stable if hr else None,
                    "queued": c.id in queued,
                }
            )
        hull, _ = current_hull(ctx, session, 0, SAME_FIDELITY)
    ctx.db.dispose()
    matched = [r for r in rows if r["matches_relaxed"] or r["matches_as_generated"]]
    pool = matched or [r for r in rows if r["loose_rms"] is not None]
    best = min(
        pool,
        key=lambda r: (
            not r["matches_relaxed"],
            r["e_above_hull"] if r["e_above_hull"] is not None else 9e9,
            r["loose_rms"] if r["loose_rms"] is not None else 9e9,
        ),
        default=None,
    )
    # Where the hidden phase itself (relaxed in part 1 by the same simulator) would sit on
    # the hull this campaign ended with.
    hidden_on_final_hull = None
    if hull_result and hull_result["simulator"] == simulator:
        row = next(r for r in hull_result["phases"] if r["id"] == hidden_id)
        if row["engine_e_form"] is not None:
            hidden_on_final_hull = _r(hull.distance(hidden.composition, row["engine_e_form"]))
    return reachability({
        "hidden": hidden_id,
        "formula": formula,
        "hidden_primitive_sites": len(hidden.structure.get_primitive_structure()),
        "max_sites": config.generation.max_sites,
        "reachable_by_size": len(hidden.structure.get_primitive_structure())
        <= config.generation.max_sites,
        "simulator": simulator,
        "wall_s": _r(wall, 1),
        "n_candidates_all_formulas": n_generated_all,
        "n_validated_all_formulas": n_validated_all,
        "n_queued_all_formulas": n_queued_all,
        "n_generated_of_formula": len(rows),
        "n_validated_of_formula": sum(1 for r in rows if r["e_above_hull"] is not None),
        "rediscovered_relaxed": any(r["matches_relaxed"] for r in rows),
        "generated_as_is": any(r["matches_as_generated"] for r in rows),
        "best": best,
        "best_basis": (
            "matched (relaxed first, then lowest e_above_hull)"
            if matched
            else "no match: closest by loose StructureMatcher rms (ltol 0.3, stol 0.5, 10 deg)"
            if best
            else None
        ),
        "hidden_phase_e_above_final_hull": hidden_on_final_hull,
        "candidates_of_formula": rows,
    })  # fmt: skip


# ---------------------------------------------------------------- output


def plot(result: dict, path: Path) -> None:
    hull = result["hull"]
    rows = hull["phases"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    labels = [f"{r['formula']}\n{r['id']}" for r in rows]
    xs = range(len(rows))
    vals = [r["engine_e_above_hull"] if r["engine_e_above_hull"] is not None else 0 for r in rows]
    colors = ["C0" if r["id"] in MP_STABLE else "C1" for r in rows]
    a.bar(xs, vals, color=colors)
    for x, r in zip(xs, rows, strict=True):
        if r["mp_e_above_hull"] is not None:
            a.plot(x, r["mp_e_above_hull"], "k_", ms=12)
    a.axhline(STABLE_TOL, ls="--", c="grey", lw=0.8)
    a.set_xticks(list(xs), labels, rotation=90, fontsize=6)
    a.set_ylabel(f"{hull['simulator']} e_above_hull (eV/atom, same_fidelity)")
    a.set_title("blue: MP Mn-O entries (MP: 0, black); orange: no MP energy", fontsize=8)
    # Engine minus MP: each MP entry's own formation energy, and MP's hull energy at the
    # composition (WBM labels) against the engine's hull energy there.
    pairs = [(r["formula"] + " " + r["id"], r.get("d_e_form"), "C0") for r in rows]
    pairs = [p for p in pairs if p[1] is not None]
    seen = set()
    for r in rows:
        if r.get("d_hull_e_form_wbm") is not None and r["formula"] not in seen:
            seen.add(r["formula"])
            pairs.append((f"{r['formula']} hull (WBM)", r["d_hull_e_form_wbm"], "C2"))
    ys = range(len(pairs))
    b.barh(list(ys), [p[1] for p in pairs], color=[p[2] for p in pairs])
    b.set_yticks(list(ys), [p[0] for p in pairs], fontsize=7)
    b.axvline(0, c="k", lw=0.8)
    b.invert_yaxis()
    b.set_xlabel(f"{hull['simulator']} - MP formation energy (eV/atom, MP2020)")
    b.set_title("blue: phase vs its MP entry; green: hull energy at its composition vs MP (WBM)",
                fontsize=8)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": version("torch"),
        "chgnet": version("chgnet"),
        "sevenn": version("sevenn"),
        "pymatgen": version("pymatgen"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None, help="stores (default: temp)")
    parser.add_argument("--simulator", default="sevennet", help="part 1 (default: SevenNet-0)")
    parser.add_argument(
        "--rediscovery-simulator", default="sevennet", help="part 2 ('sevennet' or 'chgnet')"
    )
    parser.add_argument("--hide", nargs="*", default=list(HIDE))
    parser.add_argument("--part", choices=("hull", "rediscovery", "both"), default="both")
    parser.add_argument("--smoke", action="store_true", help="1 round x 2, one hidden phase")
    parser.add_argument("--out", type=Path, default=RESULTS / "known_hull.json")
    parser.add_argument(
        "--resummarise", action="store_true", help="recompute derived numbers and the plot of --out"
    )
    args = parser.parse_args()
    if args.resummarise:
        result = json.loads(args.out.read_text())
        if "hull" in result:
            own_element_offsets(result["hull"])
            plot(result, args.out.with_suffix(".png"))
        for run in result.get("rediscovery", []):
            reachability(run)
        args.out.write_text(json.dumps(result, indent=2))
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("discovery").setLevel(logging.WARNING)
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    changes: dict = {}
    relax: dict = {}
    if args.smoke:
        relax = {"simulator__max_steps": 3}
        changes = {"rounds": 1, "validation_budget": 2, **relax}
        args.hide = args.hide[:1]
    result: dict = {
        "benchmark": "known_hull",
        "settings": {
            "config": "campaigns/quickstart.yaml",
            "hull_simulator": args.simulator,
            "rediscovery_simulator": args.rediscovery_simulator,
            "hidden": args.hide,
            "smoke": args.smoke,
            "changes_to_quickstart": {
                "part1": {"simulator.name": args.simulator, "store": "shared SQLite"},
                "part2": {
                    "simulator.name": args.rediscovery_simulator,
                    "references.exclude": "[hidden id]",
                    **{k: v for k, v in changes.items()},
                },
            },
            "stable_tolerance_eV_per_atom": STABLE_TOL,
            "note": "all campaigns share one SQLite store: a part-2 campaign of the part-1 "
            "simulator copies the relaxed references instead of relaxing them again, so its "
            "wall_s is the campaign alone",
        },
        "machine": machine(),
    }

    def save() -> None:
        result["total_wall_s"] = _r(time.perf_counter() - t_all, 1)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
        if "hull" in result:
            plot(result, args.out.with_suffix(".png"))

    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        hull_result = None
        if args.part in ("hull", "both"):
            hull_result = hull_part(work, args.simulator, **relax)
            result["hull"] = hull_result
            log.info("part 1 done in %.0f s", hull_result["wall_s_references"])
            save()
        if args.part in ("rediscovery", "both"):
            runs = []
            for hidden_id in args.hide:
                run = rediscovery_run(
                    work, hidden_id, args.rediscovery_simulator, hull_result, **changes
                )
                log.info(
                    "hidden %s: %d of formula generated, rediscovered %s, %.0f s",
                    hidden_id, run["n_generated_of_formula"], run["rediscovered_relaxed"],
                    run["wall_s"],
                )  # fmt: skip
                runs.append(run)
                result["rediscovery"] = runs
                save()  # what is done so far survives an interrupted run
    save()
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
