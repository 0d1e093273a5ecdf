"""The `discovery` command line (Typer)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from discovery.config import ConfigError, load_config
from discovery.frontends.safe_text import SafeRichHandler, labelled, plain

app = typer.Typer(
    help="An open crystal-discovery engine: generate, screen, simulate, learn, review.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
review_app = typer.Typer(help="The review queue of a campaign.", no_args_is_help=True)
app.add_typer(review_app, name="review")

# Off a terminal (CI logs, pipes) rich would wrap tables at 80 columns; give them room.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
log = logging.getLogger("discovery")

NOISY = ("mlflow", "alembic", "urllib3", "matplotlib", "pyxtal", "numexpr")


class ExportFormat(StrEnum):
    csv = "csv"
    json = "json"
    cif = "cif"
    extxyz = "extxyz"


class QueueStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"


def _setup_logging(verbose: bool) -> None:
    """One handler and one format for every log line: ours, the libraries' and Python
    warnings (CHGNet's, say), all on stderr through rich, so they print above the progress
    bars instead of across them."""
    level = logging.DEBUG if verbose else logging.INFO
    handler = SafeRichHandler(console=err, show_path=False, rich_tracebacks=True)
    # MLflow would otherwise attach its own stream handler and format when first imported.
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
    logging.captureWarnings(True)
    levels = {name: level for name in ("discovery", "models", "simulators")}
    levels |= {name: logging.WARNING for name in (*NOISY, "py.warnings")}
    for name, lvl in levels.items():
        lg = logging.getLogger(name)
        lg.setLevel(lvl)
        lg.handlers[:] = [handler]
        lg.propagate = False


def _default_threads() -> int:
    # Half the cores: torch's OpenMP pool spin-waits, and oversubscribing a small machine
    # (two campaigns, or a campaign beside a test run) was measured 40x slower on 2 cores.
    env = os.environ.get("DISCOVERY_THREADS")
    return int(env) if env else max(1, (os.cpu_count() or 2) // 2)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(labelled("error", "bold red", message), highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _load(config: Path):
    try:
        return load_config(config)
    except ConfigError as e:
        raise _fail(str(e)) from None


def _check_port(host: str, port: int) -> None:
    """Fail (exit 2) before printing anything if nothing could listen on host:port."""
    import socket

    if not 0 < port < 65536:
        raise _fail(f"invalid --port {port}: must be 1..65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise _fail(f"invalid --host {host!r}: {e.strerror or e}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # As the servers bind: a port in TIME_WAIT is free, one with a listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as e:
            raise _fail(
                f"cannot listen on {host}:{port}: {e.strerror or e} (is another server "
                "running there? choose another --port)"
            ) from None


def _check_output_file(path: Path) -> None:
    """Fail (exit 2) unless `path` can be written as a file, creating nothing."""
    import tempfile

    if path.is_dir():
        raise _fail(f"--out {path} is a directory; give a file name, e.g. {path / 'shortlist'}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise _fail(f"--out {path}: the directory {parent} does not exist")
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as e:
        raise _fail(f"--out {path}: cannot write in {parent} ({e.strerror or e})") from None


def _set_threads(threads: int) -> None:
    from discovery.engine.threads import limit_threads

    limit_threads(threads or _default_threads())


def _open(directory: Path):
    from discovery.engine.campaign_directory import open_campaign

    try:
        return open_campaign(directory)
    except ConfigError as e:
        raise _fail(str(e)) from None


@app.command()
def run(
    config: Path = typer.Argument(..., help="Campaign YAML."),
    directory: Path = typer.Option(..., "--dir", "-d", help="Campaign directory (created)."),
    progress: bool = typer.Option(True, help="Progress bars (only shown on a terminal)."),
    threads: int = typer.Option(
        0, min=0, help="CPU threads for torch; 0 = $DISCOVERY_THREADS or half the cores."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Run (or resume) a campaign; prints the summary table at the end."""
    _setup_logging(verbose)
    cfg = _load(config)
    try:
        # Fail on bad reference specs before anything is created.
        from discovery.domain.reference_structures import reference_records

        reference_records(cfg.elements, cfg.references.known)
    except (KeyError, ValueError) as e:
        message = e.args[0] if e.args else str(e)  # str() of a KeyError adds quotes
        raise _fail(f"invalid value in 'references.known': {message}") from None
    from discovery.engine.progress import StageProgress
    from discovery.engine.round_loop import run_campaign

    _set_threads(threads)

    try:
        ctx = run_campaign(cfg, directory, StageProgress(None if progress else False, console=err))
    except ConfigError as e:
        raise _fail(str(e)) from None
    _print_status(directory)
    out.print(
        plain(
            f"\nresults: {directory}  (store {ctx.location.describe_store(cfg)}, "
            f"MLflow `discovery ui {directory}`, "
            f"shortlist `discovery export {directory} --format csv --out shortlist.csv`)"
        )
    )


@app.command()
def pretrain(
    config: Path = typer.Argument(..., help="Pretraining YAML (see docs or README)."),
    out_dir: Path = typer.Option(
        ..., "--out", "-o", help="Output directory (created; a second run resumes it)."
    ),
    progress: bool = typer.Option(True, help="Progress bars (only shown on a terminal)."),
    threads: int = typer.Option(
        0, min=0, help="CPU threads for torch; 0 = $DISCOVERY_THREADS or half the cores."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Generate a synthetic set over many chemistries, label it with the teacher potential,
    train the ensemble on it and write a versioned checkpoint with its data card. Run again
    after a kill: finished labels are kept."""
    from discovery.config import load_pretrain_config

    _setup_logging(verbose)
    try:
        cfg = load_pretrain_config(config)
    except ConfigError as e:
        raise _fail(str(e)) from None
    from discovery.engine.pretraining.pretrain_run import run_pretraining
    from discovery.engine.progress import StageProgress

    _set_threads(threads)
    try:
        result = run_pretraining(
            cfg, out_dir, StageProgress(None if progress else False, console=err)
        )
    except ConfigError as e:
        raise _fail(str(e)) from None
    corr = result.card["labels"]["correction"]
    out.print(
        plain(
            f"checkpoint {result.checkpoint}\ndata card {result.card_json} "
            f"({result.card_markdown.name})\n{result.card['labels']['entries']} entries, "
            f"labelled {result.labelled_now} now; single-point correction {corr['method']}"
        )
    )


def _print_status(directory: Path) -> None:
    from discovery.frontends.status import (
        counts,
        guard_warnings,
        round_columns,
        round_rows,
        top_candidates,
    )
    from discovery.frontends.summary_tables import fitted_tables

    camp = _open(directory)
    title = f"campaign {camp.config.name} ({' -> '.join(camp.fidelities)})"
    for table in fitted_tables(title, round_columns(camp), round_rows(camp), out.width):
        out.print(table)
    top = top_candidates(camp)
    if top:
        columns = {key: key for key in top[0]}
        title = "top candidates (lowest energy above hull)"
        for table in fitted_tables(title, columns, top, out.width, justify="left"):
            out.print(table)
    out.print(plain(" ".join(f"{k}={v}" for k, v in sorted(counts(camp).items()))))
    for text in guard_warnings(camp):
        out.print(labelled("warning", "bold yellow", text))


@app.command()
def status(directory: Path = typer.Argument(..., help="Campaign directory.")) -> None:
    """Rounds, counts and the best candidates so far."""
    _open(directory)
    _print_status(directory)


@app.command()
def ui(
    directory: Path = typer.Argument(..., help="Campaign directory."),
    host: str = typer.Option("127.0.0.1", help="Bind address (localhost by default)."),
    port: int = typer.Option(5000, help="Port."),
) -> None:
    """Serve the MLflow UI on this campaign's tracking store."""
    camp = _open(directory)
    camp.db.dispose()
    uri = camp.location.tracking_uri(camp.config)
    if not uri.startswith("sqlite:"):
        out.print(plain(f"this campaign tracks to {uri}; open that server's UI"))
        return
    _check_port(host, port)
    cmd = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", uri,
        "--default-artifact-root", camp.location.artifact_dir.resolve().as_uri(),
        "--host", host, "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    err.print(plain(f"MLflow UI for {camp.config.name}: http://{host}:{port}"))
    try:
        raise typer.Exit(subprocess.call(cmd))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


@review_app.command("list")
def review_list(
    directory: Path = typer.Argument(..., help="Campaign directory."),
    status_: QueueStatus | None = typer.Option(None, "--status", help="Only this state."),
) -> None:
    """The review queue with hull distances and provenance."""
    from discovery.engine.shortlist import shortlist
    from discovery.frontends.summary_tables import fitted_tables

    camp = _open(directory)
    status_value = status_.value if status_ else None
    items = shortlist(camp.db, camp.campaign_id, camp.fidelities, status_value)
    cols = ("id", "formula", "spacegroup", "e_form_sim", "e_above_hull", "fidelity",
            "hull_mode", "e_above_hull_other", "novelty", "known_id", "decomposition",
            "e_hull_pred", "round", "parent", "review_status", "reviewer",
            "review_note", "warnings")  # fmt: skip
    title = f"review queue of {camp.config.name}"
    rows = [row for row, _ in items]
    for table in fitted_tables(title, {c: c for c in cols}, rows, out.width, "left", 40):
        out.print(table)
    if not items:
        out.print("the queue is empty")


def _decide(
    directory: Path, candidates: list[str], decision: str, reviewer: str, note: str
) -> None:
    from discovery.engine.review_queue import ReviewError, decide_many

    camp = _open(directory)
    try:
        recs = decide_many(camp.db, camp.campaign_id, candidates, decision, reviewer, note)
    except ReviewError as e:
        raise _fail(str(e)) from None
    for rec in recs:
        out.print(
            plain(f"{rec.candidate}: {rec.decision} by {rec.reviewer} at {rec.at:%Y-%m-%d %H:%M}")
        )


@review_app.command()
def approve(
    directory: Path = typer.Argument(...),
    candidates: list[str] = typer.Argument(
        ..., help="Candidate ids, e.g. r1-sub-0003 (one or more)."
    ),
    reviewer: str = typer.Option(..., "--reviewer", help="Your name."),
    note: str = typer.Option("", "--note"),
) -> None:
    """Approve queued candidates (several at once: all or none)."""
    _decide(directory, candidates, "approved", reviewer, note)


@review_app.command()
def reject(
    directory: Path = typer.Argument(...),
    candidates: list[str] = typer.Argument(..., help="Candidate ids (one or more)."),
    reviewer: str = typer.Option(..., "--reviewer", help="Your name."),
    note: str = typer.Option("", "--note"),
) -> None:
    """Reject queued candidates (several at once: all or none)."""
    _decide(directory, candidates, "rejected", reviewer, note)


@review_app.command("comment")
def review_comment(
    directory: Path = typer.Argument(...),
    candidate: str = typer.Argument(..., help="Candidate id."),
    reviewer: str = typer.Option(..., "--reviewer", help="Your name."),
    note: str = typer.Option(..., "--note", help="The comment."),
) -> None:
    """Add a comment to a candidate's history without changing its review status."""
    from discovery.engine.review_queue import ReviewError, comment

    camp = _open(directory)
    try:
        rec = comment(camp.db, camp.campaign_id, candidate, reviewer, note)
    except ReviewError as e:
        raise _fail(str(e)) from None
    out.print(plain(f"{rec.candidate}: comment by {rec.reviewer} at {rec.at:%Y-%m-%d %H:%M}"))


@review_app.command("history")
def review_history(
    directory: Path = typer.Argument(...),
    candidate: str = typer.Argument(..., help="Candidate id."),
) -> None:
    """Decisions and comments on a candidate, oldest first."""
    from discovery.engine.review_queue import history

    camp = _open(directory)
    table = Table(title=plain(f"history of {candidate}"))
    for c in ("at (UTC)", "decision", "reviewer", "note"):
        table.add_column(c)
    for rec in history(camp.db, camp.campaign_id, candidate):
        table.add_row(
            f"{rec.at:%Y-%m-%d %H:%M:%S}", plain(rec.decision), plain(rec.reviewer), plain(rec.note)
        )
    out.print(table)


@app.command()
def serve(
    directory: Path = typer.Argument(..., help="Campaign directory."),
    host: str = typer.Option("127.0.0.1", help="Bind address (localhost by default)."),
    port: int = typer.Option(8000, help="Port."),
    token: str | None = typer.Option(
        None, help="Token for write actions; default $DISCOVERY_TOKEN, else a random one."
    ),
    mlflow_url: str = typer.Option(
        "http://127.0.0.1:5000", help="Where `discovery ui` serves MLflow, for run links."
    ),
) -> None:
    """Serve the review web app on this campaign's store."""
    import uvicorn

    from discovery.frontends.web import create_app
    from discovery.frontends.web.auth import TOKEN_ENV, resolve_token

    _setup_logging(False)
    camp = _open(directory)
    camp.db.dispose()
    _check_port(host, port)
    write_token, generated = resolve_token(token)
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s: anyone who can reach this address can read the campaign", host)
    web = create_app(directory, write_token, mlflow_url)
    err.print(plain(f"review app for {camp.config.name}: http://{host}:{port}"), highlight=False)
    if generated:
        err.print(
            f"review token (needed to approve, reject, comment): {write_token}", highlight=False
        )
    else:
        err.print(f"review token: from --token or ${TOKEN_ENV}", highlight=False)
    uvicorn.run(web, host=host, port=port, log_level="warning")


@app.command()
def export(
    directory: Path = typer.Argument(..., help="Campaign directory."),
    fmt: ExportFormat = typer.Option(
        ExportFormat.csv, "--format", help="csv, json, cif (zip with a manifest) or extxyz."
    ),
    out_path: Path = typer.Option(..., "--out", help="Output file."),
    status_: QueueStatus | None = typer.Option(None, "--status", help="Only this review state."),
    force: bool = typer.Option(False, "--force", help="Overwrite the output file if it exists."),
) -> None:
    """Write the shortlist with provenance."""
    from discovery.engine.shortlist import shortlist, write_export

    _check_output_file(out_path)
    camp = _open(directory)
    status_value = status_.value if status_ else None
    items = shortlist(camp.db, camp.campaign_id, camp.fidelities, status_value)
    try:
        write_export(items, fmt.value, out_path, force=force)
    except FileExistsError:
        raise _fail(f"{out_path} exists; pass --force to overwrite it") from None
    except OSError as e:
        raise _fail(f"cannot write --out {out_path}: {e.strerror or e}") from None
    noun = "candidate" if len(items) == 1 else "candidates"
    out.print(plain(f"wrote {len(items)} {noun} to {out_path}"))


@app.command()
def tune(
    config: Path = typer.Argument(..., help="The campaign YAML."),
    directory: Path = typer.Option(..., "--dir", "-d", help="Its campaign dir (the data)."),
    trials: int = typer.Option(20, min=1, help="Total trials the study should reach."),
    epochs: int = typer.Option(0, min=0, help="Max epochs per trial; 0 = the config's."),
    out_path: Path | None = typer.Option(None, "--out", help="Default: DIR/best-model.yaml."),
    threads: int = typer.Option(0, min=0, help="CPU threads for torch; 0 = half the cores."),
) -> None:
    """Tune the crystal GNN on a campaign's validated data (Optuna, resumable, pruned)."""
    _setup_logging(False)
    cfg = _load(config)
    camp = _open(directory)
    if camp.config.name != cfg.name:
        raise _fail(f"{directory} holds campaign {camp.config.name!r}, not {cfg.name!r}")
    from discovery.frontends.tuning import tune as run_tuning

    _set_threads(threads)
    try:
        result = run_tuning(camp, trials, out_path or directory / "best-model.yaml", epochs or None)
    except ValueError as e:
        raise _fail(str(e)) from None
    out.print(
        f"{result.trials_done} trials; best validation MAE {result.best_val_mae:.4f} eV/atom; "
        f"settings written to {result.output} (use `include: [{result.output.name}]`)",
        markup=False,
    )


@app.command("config-reference")
def config_reference() -> None:
    """Print the config reference table (Markdown) that the README embeds."""
    from discovery.frontends.config_reference import markdown

    out.print(markdown(), markup=False, highlight=False, soft_wrap=True)


@app.command()
def prototypes() -> None:
    """List the built-in prototype structures."""
    from discovery.domain.generation.prototypes import prototypes as protos

    for p in protos():
        out.print(f"{p.name:<22} {p.spacegroup:<10} {'ionic' if p.ionic else 'metallic'}")


@app.command()
def references(
    chemsys: list[str] = typer.Argument(
        ..., help="Chemical systems, e.g. Li-Mn-O; 'fetch Li-Mn-O' only fetches into --dir."
    ),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Take the sources (and store) from this campaign YAML."
    ),
    source: list[str] = typer.Option(
        [], "--source", help="bundled or materials_project (repeatable; default: bundled)."
    ),
    entries: list[Path] = typer.Option([], "--entries", help="A file of computed entries."),
    structures: list[Path] = typer.Option([], "--structures", help="A folder of structures."),
    directory: Path | None = typer.Option(
        None, "--dir", "-d", help="Campaign directory whose store caches fetched phases."
    ),
    plot: Path | None = typer.Option(
        None, help="Phase-diagram PNG (default: references-<systems>.png)."
    ),
) -> None:
    """The known phases of chemical systems per source, and the hull they make."""
    from discovery.frontends.reference_report import database_hull, phase_rows, write_plot
    from discovery.frontends.summary_tables import fitted_tables

    fetch_only = bool(chemsys) and chemsys[0] == "fetch"
    systems = chemsys[1:] if fetch_only else chemsys
    cfg = _reference_config(systems, config, source, entries, structures)
    if fetch_only and directory is None:
        raise _fail("'references fetch' keeps what it fetches in a store: give --dir")
    phases = _gather_known(cfg, directory)
    if fetch_only:
        out.print(f"{len(phases)} known phases of {', '.join(systems)} kept in {directory}")
        return
    rows = phase_rows(phases)
    if rows:
        columns = {k: k for k in rows[0]}
        for table in fitted_tables("known phases", columns, rows, out.width, "left"):
            out.print(table)
    else:
        out.print("no known phases: add a source (--source, --entries, --structures)")
    hull = database_hull(phases, cfg.elements)
    if hull is None:
        out.print("no phase has a database energy (MP2020 scheme): no database hull to show")
        return
    diagram, hull_rows = hull
    table_rows = [
        {
            "phase": r.phase.reduced_formula,
            "id": r.phase.id,
            "source": r.phase.source,
            "e_form": r.e_form_per_atom,
            "e_above_hull": r.e_above_hull,
            "decomposition": r.decomposition if r.e_above_hull > 1e-6 else "on the hull",
        }
        for r in hull_rows
    ]
    title = "database hull (MP2020 energies, MP elemental references; eV/atom)"
    for table in fitted_tables(title, {k: k for k in table_rows[0]}, table_rows, out.width, "left"):
        out.print(table)
    path = plot or Path(f"references-{'_'.join(systems)}.png")
    out.print(f"phase diagram: {write_plot(diagram, path)}")


def _reference_config(systems, config, source, entries, structures):
    """A campaign config carrying only what `references` needs: systems and sources."""
    from discovery.config import parse_config

    if not systems:
        raise _fail("give at least one chemical system, e.g. Li-Mn-O")
    if config is not None:
        base = _load(config)
        return base.model_copy(update={"chemical_systems": list(systems)})
    sources: list[object] = [*source]
    sources += [{"entries": str(p.resolve())} for p in entries]
    sources += [{"structures": str(p.resolve())} for p in structures]
    try:
        return parse_config(
            {"name": "references", "chemical_systems": list(systems),
             "references": {"sources": sources or ["bundled"]}}
        )  # fmt: skip
    except ConfigError as e:
        raise _fail(str(e)) from None


def _gather_known(cfg, directory: Path | None):
    from discovery.domain.known.phase import KnownSourceError
    from discovery.engine.campaign_directory import CampaignDirectory
    from discovery.engine.known_phases import known_phases_in_store

    url = None
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        url = CampaignDirectory(directory).store_url(cfg)
    try:
        return known_phases_in_store(cfg, url)
    except KnownSourceError as e:
        raise _fail(str(e)) from None


@app.command()
def validate(
    config: Path = typer.Argument(..., help="Campaign YAML."),
    directory: Path | None = typer.Option(
        None, "--dir", "-d", help="Also check that `discovery run` could use this directory."
    ),
) -> None:
    """Check a campaign config, and the paths it names, without creating anything."""
    from discovery.engine.campaign_directory import CampaignDirectory, config_path_problems

    cfg = _load(config)
    try:
        if directory is not None:
            CampaignDirectory(directory).preflight(cfg)
        else:
            problems = config_path_problems(cfg)
            if problems:
                head = [f"{len(problems)} problems"] if len(problems) > 1 else []
                indent = "  " if head else ""
                raise ConfigError("\n".join([*head, *(indent + p for p in problems)]))
    except ConfigError as e:
        raise _fail(str(e)) from None
    where = f", {directory} ready" if directory is not None else ""
    out.print(plain(f"{config}: ok ({cfg.name}, {', '.join(cfg.chemical_systems)}{where})"))


if __name__ == "__main__":
    app()
