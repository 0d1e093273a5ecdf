"""Store at scale: a million candidates in SQLite and in PostgreSQL, and the two queries a
campaign asks of them most.

    python benchmarks/scale.py [--rows 1000000] [--backends sqlite,postgresql]
                               [--pg-url postgresql+psycopg://...] [--repeats 21]

For each back-end, in a child process of its own (so that its peak RSS is the driver's):
builds a store at the head schema revision through `Database(url)` (the migrations, indexes
included), inserts `rows` candidates with realistic structure JSON and the predictions a campaign
in its fourth round holds, then times (a) the top 100 open candidates by predicted hull distance
(`queries.top_pending_query`) and (b) reading one de-duplication bucket
(`queries.bucket_query`, the shape the generate stage uses), structure JSON decoded.

The predictions are laid out as the screen stage leaves them: every candidate has one from
the previous model; the best 1 % by it were validated then and so have none from the current
model (the screen scores only the open pool); every other candidate has one from the current
model, whose best `--selected` (this round's validation budget) are now selected, not open,
and sit at the head of the index, where the top-100 query has to walk past them. Medians of
`repeats` runs count (first runs and p95 are kept too); statistics are refreshed (ANALYZE)
after loading, as autovacuum would on a long-lived PostgreSQL store. Finally schema revision
0002 is stepped down (its indexes dropped) and both queries are timed again, for the ratio.

Without --pg-url a throwaway PostgreSQL server is started on loopback from
/usr/lib/postgresql/*/bin (as the `postgres` user when run as root) and removed afterwards.

Writes benchmarks/results/scale.json (keeping a `dask_speedup_2_workers` already there) and
scale.png. The Dask throughput part of the benchmark is not built yet.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import logging
import multiprocessing
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from alembic import command  # noqa: E402
from pymatgen.core import Lattice, Structure  # noqa: E402

from discovery.store import Campaign, Candidate, Database  # noqa: E402
from discovery.store.migrate import alembic_config  # noqa: E402
from discovery.store.queries import bucket_query, top_pending_query  # noqa: E402

log = logging.getLogger("benchmarks.scale")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TARGET_MS = 100.0
TARGET_RSS_MB = 2048.0
MODEL = "m-round3"
PREVIOUS_MODEL = "m-round2"
VALIDATED_SHARE = 0.01  # validated in earlier rounds
CHUNK = 20_000  # rows per insert batch: bounds the driver's memory, not the store's size
ELEMENTS = ["Li", "Na", "K", "Mg", "Ca", "Al", "Ti", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga"]
ANIONS = ["O", "S", "Se", "F", "Cl", "N"]
NPRIM = (1, 2, 4, 6, 8)


def _template() -> dict:
    """An 8-site structure as pymatgen serialises it: the size a real candidate row has."""
    structure = Structure(
        Lattice.from_parameters(5.1, 5.2, 5.3, 90, 95, 90),
        ["Li", "Li", "Mn", "Mn", "O", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5],
         [0.25, 0.25, 0.25], [0.75, 0.75, 0.25], [0.75, 0.25, 0.75], [0.25, 0.75, 0.75]],
    )  # fmt: skip
    return structure.as_dict()


def _formulas() -> list[str]:
    """About 5,000 distinct reduced formulas: ~200 candidates each, as a campaign that explores
    many polymorphs per composition has."""
    out = []
    for i, a in enumerate(ELEMENTS):
        for b in ELEMENTS[i + 1 :]:
            for x in ANIONS:
                for na in range(1, 4):
                    for nb in range(1, 4):
                        for nx in (1, 2, 3, 4, 5, 7):
                            out.append(f"{a}{na}{b}{nb}{x}{nx}")
    return out[:5000]


CAND_COLUMNS = (
    "id", "campaign_id", "uid", "round_index", "is_reference", "structure", "formula",
    "reduced_formula", "chemsys", "nsites", "spacegroup", "origin", "parent", "origin_detail",
    "dedup_key", "status", "created_at",
)  # fmt: skip
PRED_COLUMNS = (
    "candidate_id", "model_version", "round_index", "e_form_mean", "e_form_std", "e_hull_mean",
)  # fmt: skip


def _rows(
    n: int, n_selected: int, rng: np.random.Generator
) -> Iterator[tuple[list[tuple], list[tuple]]]:
    """Candidate and prediction rows in chunks, as tuples in CAND_COLUMNS / PRED_COLUMNS
    order; the structure JSON is serialised once, since every row carries the same size."""
    structure = json.dumps(_template())
    formulas = _formulas()
    e_hull = rng.normal(0.15, 0.12, n)
    e_prev = e_hull + rng.normal(0.0, 0.05, n)
    validated = e_prev <= np.quantile(e_prev, VALIDATED_SHARE)
    open_hulls = np.sort(e_hull[~validated])
    selected = ~validated & (e_hull <= open_hulls[min(n_selected, len(open_hulls)) - 1])
    formula_ix = rng.integers(len(formulas), size=n)
    nprim = rng.choice(NPRIM, size=n)
    spacegroup = rng.integers(1, 231, size=n)
    # The text form both SQLAlchemy's SQLite DateTime and PostgreSQL's timestamptz read back.
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    for start in range(0, n, CHUNK):
        cands, preds = [], []
        for i in range(start, min(n, start + CHUNK)):
            formula = formulas[formula_ix[i]]
            status = "validated" if validated[i] else "selected" if selected[i] else "generated"
            key = f"{formula}|{nprim[i]}|{spacegroup[i]}"
            cands.append(
                (i + 1, 1, f"r{i % 4}-rnd-{i:07d}", i % 4, False, structure, formula, formula,
                 "Li-Mn-O", 8, int(spacegroup[i]), "random", None, "{}", key, status, now)
            )  # fmt: skip
            e = float(e_prev[i])
            preds.append((i + 1, PREVIOUS_MODEL, 2, -1.0 + e, 0.06, e))
            if not validated[i]:
                e = float(e_hull[i])
                preds.append((i + 1, MODEL, 3, -1.0 + e, 0.05, e))
        yield cands, preds


def _insert(con, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Bulk rows through the driver's fastest path (COPY on PostgreSQL, executemany on
    SQLite): loading is set-up here, the queries afterwards are what is measured."""
    raw = con.connection.driver_connection
    names = ", ".join(columns)
    if con.dialect.name == "postgresql":
        with raw.cursor() as cur, cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        marks = ", ".join("?" * len(columns))
        raw.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)


def _load(db: Database, n: int, n_selected: int, seed: int) -> float:
    t0 = time.perf_counter()
    with db.session() as s:
        s.add(Campaign(id=1, name="scale", config_yaml=""))
    for k, (cands, preds) in enumerate(_rows(n, n_selected, np.random.default_rng(seed))):
        with db.engine.begin() as con:
            _insert(con, "candidates", CAND_COLUMNS, cands)
            _insert(con, "predictions", PRED_COLUMNS, preds)
        if k % 10 == 0:
            log.info("%s: %d rows", db.engine.dialect.name, (k + 1) * CHUNK)
    with db.engine.connect() as con:
        if db.engine.dialect.name == "postgresql":
            # Explicit ids bypassed the sequence; later inserts by the ORM must not collide.
            con.exec_driver_sql(
                "SELECT setval('candidates_id_seq', (SELECT max(id) FROM candidates))"
            )
        con.exec_driver_sql("ANALYZE")
        con.commit()
    # The rows read back through the ORM like any other: the bulk path wrote valid values.
    with db.session() as s:
        first = s.get(Candidate, 1)
        assert first.structure["@class"] == "Structure" and first.created_at is not None
    return time.perf_counter() - t0


def _timed(db: Database, stmt, repeats: int) -> tuple[list[float], int]:
    times, size = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        with db.session() as s:
            rows = s.execute(stmt).all()
        times.append((time.perf_counter() - t0) * 1000)
        size = len(rows)
    return times, size


def _plan(db: Database, stmt) -> list[str]:
    sql = str(stmt.compile(db.engine, compile_kwargs={"literal_binds": True}))
    prefix = "EXPLAIN QUERY PLAN " if db.engine.dialect.name == "sqlite" else "EXPLAIN "
    with db.engine.connect() as con:
        return [" ".join(map(str, row)) for row in con.exec_driver_sql(prefix + sql)]


def _time_queries(db: Database, repeats: int, seed: int) -> dict[str, list]:
    top_times, top_rows = _timed(db, top_pending_query(1, MODEL, 100), repeats)
    rng = np.random.default_rng(seed + 1)
    formulas = _formulas()
    bucket_times, sizes = [], []
    for _ in range(repeats):
        formula = formulas[rng.integers(len(formulas))]
        prefix = f"{formula}|{rng.choice(NPRIM)}|"
        times, size = _timed(db, bucket_query(1, formula, prefix), 1)
        bucket_times += times
        sizes.append(size)
    return {"top": top_times, "top_rows": [top_rows], "bucket": bucket_times, "sizes": sizes}


def _without_scale_indexes(db: Database, repeats: int, seed: int) -> dict:
    """The same queries on the baseline schema: revision 0002's indexes taken away again
    through its own downgrade, to show what they are worth."""
    with db.engine.begin() as con:
        config = alembic_config()
        config.attributes["connection"] = con
        command.downgrade(config, "0001")
    t = _time_queries(db, repeats, seed)
    return {
        "top100_ms": round(statistics.median(t["top"]), 2),
        "bucket_ms": round(statistics.median(t["bucket"]), 2),
    }


def _measure(url: str, n: int, n_selected: int, repeats: int, seed: int) -> dict:
    """One back-end, in its own process: load, then time both queries."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    db = Database(url)
    load_s = _load(db, n, n_selected, seed)
    t = _time_queries(db, repeats, seed)
    formula = _formulas()[0]
    example = bucket_query(1, formula, f"{formula}|2|")
    plans = {"top100": _plan(db, top_pending_query(1, MODEL, 100)), "bucket": _plan(db, example)}
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    baseline = _without_scale_indexes(db, max(3, repeats // 4), seed)
    db.dispose()
    return {
        "top100_ms": round(statistics.median(t["top"]), 2),
        "bucket_ms": round(statistics.median(t["bucket"]), 2),
        "driver_rss_mb": round(rss_mb, 1),
        "top100_first_ms": round(t["top"][0], 2),
        "top100_p95_ms": round(float(np.percentile(t["top"], 95)), 2),
        "bucket_p95_ms": round(float(np.percentile(t["bucket"], 95)), 2),
        "top100_rows": t["top_rows"][0],
        "bucket_rows_mean": round(float(np.mean(t["sizes"])), 1),
        "load_s": round(load_s, 1),
        "load_rows_per_s": round(n / load_s),
        "without_scale_indexes": baseline,
        "plans": plans,
    }


def _in_child(url: str, args: argparse.Namespace) -> dict:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(_measure, (url, args.rows, args.selected, args.repeats, args.seed))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _throwaway_postgres() -> Iterator[str]:
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        raise SystemExit("no PostgreSQL server in /usr/lib/postgresql; pass --pg-url")
    bindir = Path(bins[-1]).parent
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    base = Path(tempfile.mkdtemp(prefix="discovery-scale-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    data, port = base / "data", _free_port()
    initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]
    subprocess.run([*as_pg, *initdb, "--no-sync"], check=True, capture_output=True)
    # fsync off speeds the load only; the timed queries read, and their pages are cached
    # by either setting.
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = str(bindir / "pg_ctl")
    start = [pg_ctl, "-D", str(data), "-l", str(base / "log"), "-w", "-o", opts, "start"]
    subprocess.run([*as_pg, *start], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        stop = [pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]
        subprocess.run([*as_pg, *stop], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _plot(store: dict, n: int, path: Path) -> None:
    names = list(store)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(9, 3.8), width_ratios=[2, 1])
    x = np.arange(len(names))
    for off, key, label in ((-0.2, "top100_ms", "top 100 open"), (0.2, "bucket_ms", "one bucket")):
        vals = [store[b][key] for b in names]
        bars = ax.bar(x + off, vals, 0.38, label=label)
        ax.bar_label(bars, fmt="%.1f")
    ax.axhline(TARGET_MS, color="red", ls="--", lw=1, label=f"target {TARGET_MS:.0f} ms")
    ax.set_xticks(x, names)
    ax.set_ylabel("median query time (ms)")
    ax.set_title(f"{n:,} candidates with predictions")
    ax.legend(fontsize=8)
    bars = ax2.bar(names, [store[b]["driver_rss_mb"] for b in names], color="grey")
    ax2.bar_label(bars, fmt="%.0f")
    ax2.axhline(TARGET_RSS_MB, color="red", ls="--", lw=1)
    ax2.set_ylabel("driver peak RSS (MB)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default=None, help="an existing server (an empty database)")
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument(
        "--selected", type=int, default=1000, help="this round's picks, no longer open"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "scale.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    store: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="discovery-scale-") as tmp:
        for backend in args.backends.split(","):
            if backend == "sqlite":
                url = f"sqlite:///{Path(tmp) / 'campaign.db'}"
                store[backend] = _in_child(url, args)
                store[backend]["db_size_mb"] = round(
                    (Path(tmp) / "campaign.db").stat().st_size / 2**20
                )
            elif backend == "postgresql":
                server = (
                    contextlib.nullcontext(args.pg_url) if args.pg_url else _throwaway_postgres()
                )
                with server as url:
                    store[backend] = _in_child(url, args)
            else:
                raise SystemExit(f"unknown back-end {backend!r}")
            log.info("%s: %s", backend, {k: v for k, v in store[backend].items() if k != "plans"})

    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    result = {
        "benchmark": "scale",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "rows": args.rows,
        "layout": (
            f"{args.rows} candidates; predictions: one per candidate by the previous model, one"
            f" by the current model for all but the {VALIDATED_SHARE:.0%} validated earlier;"
            f" the current model's best {args.selected} are selected (not open)"
        ),
        "target_ms": TARGET_MS,
        "target_rss_mb": TARGET_RSS_MB,
        # Filled by the Dask part of this benchmark, which is not built yet.
        "dask_speedup_2_workers": previous.get("dask_speedup_2_workers"),
        "dask_note": previous.get(
            "dask_note", "pending: the Dask executor part of issue 8 is not built yet"
        ),
        "store": {**previous.get("store", {}), **store},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    _plot(result["store"], args.rows, args.out.with_suffix(".png"))
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
