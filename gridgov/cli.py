"""The ``gridgov`` command line: build the demo, import incidents, inspect the store, serve the dashboard."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from gridgov.config import Settings
from gridgov.errors import GridgovError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="gridgov: management grids, grid workers and incidents for a city district.")
console = Console()
err_console = Console(stderr=True)

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="DuckDB file or postgresql:// URL (default: $GRIDGOV_DB, else var/gridgov.duckdb).",
                 show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]


def _settings(db: str | None) -> Settings:
    return Settings.from_env(db_path=db)


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")


@app.command()
def demo(
    db: DbOption = None,
    size: Annotated[str, typer.Option(help="small (seconds, for tests), medium or large.")] = "medium",
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives identical tables.")] = 0,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Last day of the demo year (YYYY-MM-DD); "
                                              "default yesterday.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing database file.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Build the deterministic demo district into a new database file (or an empty PostgreSQL database)."""
    from gridgov.demo import build_demo_file
    from gridgov.store import describe_location

    settings = _settings(db)
    summary = build_demo_file(settings.db_path, size=size, seed=seed, as_of=as_of, force=force,
                              progress=not json_out)
    if json_out:
        _print_json(summary)
    else:
        console.print(f"[green]demo district built[/green] in {describe_location(settings.db_path)}: "
                      + ", ".join(f"{k} {v}" for k, v in summary.items() if k != "db"))


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(help="CSV, Parquet, GeoJSON or GeoPackage of incidents.")],
    db: DbOption = None,
    map_: Annotated[list[str] | None, typer.Option("--map", help="Column mapping SRC=FIELD (repeatable); "
                                                   "FIELD is one of the canonical fields.")] = None,
    preset: Annotated[str | None, typer.Option(help="Name of a mapping preset or path to a preset TOML.")] = None,
    crs: Annotated[str | None, typer.Option(help="CRS of the coordinates, e.g. 4326 or EPSG:32651.")] = None,
    category_map: Annotated[Path | None, typer.Option("--category-map",
                                                      help="CSV of (source value, our code).")] = None,
    other: Annotated[str | None, typer.Option(help="Category code for types nothing else matches; without "
                                              "it they are rejected.")] = None,
    source: Annotated[str | None, typer.Option(help="Source label stored with each row; external ids are "
                                               "unique per source (default: the file's source column, else "
                                               "the preset's, else 'import').")] = None,
    json_out: JsonOption = False,
) -> None:
    """Import incidents with validation; rejected rows are kept with a reason."""
    from gridgov.ingest import ingest_file
    from gridgov.store import Store

    settings = _settings(db)
    with Store(settings.db_path) as store:
        result = ingest_file(store, file, mapping=map_ or [], preset=preset, crs=crs,
                             category_map=category_map, other=other, source=source,
                             calendar=settings.calendar, progress=not json_out)
    if json_out:
        _print_json(result.to_dict())
        return
    # Plain text: the summary quotes values from the file, and "[...]" in them must not be read as markup.
    console.print(result.summary(), markup=False, highlight=False)


@app.command()
def categories(db: DbOption = None, json_out: JsonOption = False) -> None:
    """List the incident taxonomy: code, names, class, SLA (working hours), handling minutes."""
    from gridgov.incidents import load_categories
    from gridgov.store import Store, location_exists

    settings = _settings(db)
    if location_exists(settings.db_path):
        with Store(settings.db_path, read_only=True) as store:
            df = store.categories()
    else:
        df = load_categories(settings.categories_path)
    if json_out:
        _print_json(df.to_dict(orient="records"))
        return
    table = Table("code", "中文", "English", "class", "SLA h", "handling min")
    for r in df.itertuples(index=False):
        table.add_row(r.code, r.name_zh, r.name_en, r[3], f"{r.sla_hours:g}", f"{r.handling_minutes:g}")
    console.print(table)


@app.command()
def info(db: DbOption = None, json_out: JsonOption = False) -> None:
    """Counts in the store: admin areas, units, grids, workers, incidents, open, overdue, bounding box."""
    from gridgov.store import Store, describe_location

    settings = _settings(db)
    with Store(settings.db_path, read_only=True) as store:
        out = store.counts(now=settings.clock())
        out["bbox"] = store.district_bounds()
        out["db"] = describe_location(settings.db_path)
        out["schema_version"] = store.schema_version
        out["meta"] = store.meta()
    if json_out:
        _print_json(out)
        return
    # Long metadata (e.g. the demo's hidden-structure notes) stays in --json; the table shows a pointer.
    out["meta"] = {k: (v if len(v) <= 120 else f"<{len(v)} characters; see --json>") for k, v in out["meta"].items()}
    table = Table("what", "value")
    for key, value in out.items():
        table.add_row(key, json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list | tuple)
                      else str(value))
    console.print(table)


@app.command()
def serve(
    db: DbOption = None,
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1.")] = 8050,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    demo_size: Annotated[str, typer.Option("--demo-size", help="Size of the demo built when the database "
                                           "file is missing.")] = "medium",
    debug: Annotated[bool, typer.Option(help="Dash debug mode (reloader off).")] = False,
    demo: Annotated[bool, typer.Option("--demo", help="Serve a demo: allow users who still have the published "
                                       "demo password (refused otherwise).")] = False,
    workers: Annotated[int, typer.Option("--workers", help="Server processes; more than 1 runs gunicorn and needs a "
                                         "postgresql:// store (docs/deploy.md).")] = 1,
) -> None:
    """Run the dashboard; builds the demo district first when the database file does not exist (or, with --demo,
    when the PostgreSQL database is empty)."""
    from gridgov.serve import run

    run(_settings(db).replace(port=port, host=host), demo_size=demo_size, debug=debug, demo=demo, workers=workers)


@app.command("migrate")
def migrate_cmd(
    source: Annotated[str, typer.Option("--from", help="The store to copy: DuckDB file, duckdb:///path or "
                                        "postgresql:// URL (read only).", show_default=False)],
    target: Annotated[str, typer.Option("--to", help="The new store: a DuckDB file (created) or an empty "
                                        "PostgreSQL database.", show_default=False)],
    batch_rows: Annotated[int, typer.Option("--batch-rows", help="Rows per chunk read and written.")] = 100_000,
    json_out: JsonOption = False,
) -> None:
    """Copy a deployment into a new, empty store (DuckDB ↔ PostgreSQL) in one transaction, then verify every table
    by row count and checksum; exits 1 when a table differs."""
    from gridgov.migrate import migrate

    if json_out:
        report = migrate(source, target, batch_rows=batch_rows)
    else:
        with err_console.status("opening the stores") as status:
            def show(phase: str, table: str) -> None:
                status.update(f"{'copying' if phase == 'copy' else 'verifying'} {table}")

            report = migrate(source, target, batch_rows=batch_rows, progress=show)
    if json_out:
        _print_json(report.to_dict())
    else:
        table = Table("table", "rows", "checksum", "seconds", "rows/s", "target")
        for t in report.tables:
            rate = "" if t.rows_per_s is None or t.rows == 0 else f"{t.rows_per_s:,.0f}"
            check = "[green]ok[/green]" if t.ok else \
                f"[red]MISMATCH[/red]: {t.target_rows:,} rows, checksum {t.target_checksum}"
            table.add_row(t.table, f"{t.rows:,}", t.checksum, f"{t.seconds:.2f}", rate, check)
        console.print(table)
        rate = "" if report.rows_per_s is None else f" ({report.rows_per_s:,.0f} rows/s)"
        console.print(f"{report.rows:,} rows from {report.source} to {report.target} in {report.seconds:.1f} s{rate}; "
                      f"read back and checked in {report.verify_seconds:.1f} s", markup=False, highlight=False)
    if not report.ok:
        err_console.print(f"[red]the target differs from the source in {', '.join(report.mismatched)}[/red]: "
                          "compare the rows and checksums above; the copy is committed, so drop the target before "
                          "trying again")
        raise typer.Exit(1)


# -- admin areas, units, layouts ------------------------------------------------------------------------------------

areas_app = typer.Typer(no_args_is_help=True, help="Admin boundaries: district, streets, communities.")
units_app = typer.Typer(no_args_is_help=True, help="Unit grids (about 100 m) covering the district.")
export_app = typer.Typer(no_args_is_help=True, help="Write layouts to GIS files.")
app.add_typer(areas_app, name="areas")
app.add_typer(units_app, name="units")
app.add_typer(export_app, name="export")


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, float], None] | None]:
    """A rich progress bar fed by ``progress(phase, fraction)`` callbacks (on stderr; none when disabled)."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=err_console,
                  transient=True) as bar:
        task = bar.add_task("starting", total=1.0)

        def update(phase: str, fraction: float) -> None:
            bar.update(task, description=phase, completed=fraction)

        yield update


@areas_app.command("import")
def areas_import(
    file: Annotated[Path, typer.Argument(help="GeoJSON, GeoPackage, Shapefile or GeoParquet, any CRS.")],
    level: Annotated[str, typer.Option(help="district, street or community.")],
    db: DbOption = None,
    code_col: Annotated[str | None, typer.Option("--code-col", help="Column of the area code.")] = None,
    name_col: Annotated[str | None, typer.Option("--name-col", help="Column of the area name.")] = None,
    parent_col: Annotated[str | None, typer.Option("--parent-col", help="Column of the parent's code; without it "
                                                   "parents are inferred by containment.")] = None,
    crs: Annotated[str | None, typer.Option(help="CRS of a file that carries none, e.g. 4326.")] = None,
    fix_row: Annotated[list[str] | None, typer.Option("--fix-row", help="ROW=CODE[:NAME]: set the code (and name) "
                                                      "of feature ROW (from 1) that lacks one or has a wrong one; "
                                                      "repeatable.")] = None,
    code_prefix: Annotated[str | None, typer.Option("--code-prefix", help="Digits put before every numeric code, "
                                                    "zero-padded to the level's length (community 12 digits, as "
                                                    "grid codes need).")] = None,
    district: Annotated[str | None, typer.Option(help="CODE:NAME of a district (6 digits) to store as the union "
                                                 "of these areas, when you have no district boundary.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Load admin boundaries of one level (replacing that level); repairs, rejects, overlaps and gaps reported.

    A new database also gets the category table (the default, or GRIDGOV_CONFIG's categories_path)."""
    from gridgov.areas import import_areas, parse_district, parse_fix_row
    from gridgov.incidents import load_categories
    from gridgov.store import Store

    settings = _settings(db)
    fixes = {row: (code, name) for row, code, name in map(parse_fix_row, fix_row or [])}
    made = parse_district(district) if district else None
    with Store(settings.db_path) as store:
        report = import_areas(store, file, level=level, code_col=code_col, name_col=name_col,
                              parent_col=parent_col, crs=crs, fix_rows=fixes, code_prefix=code_prefix,
                              district=made, categories=load_categories(settings.categories_path))
    if json_out:
        _print_json(report.to_dict())
    else:
        console.print(report.summary(), markup=False, highlight=False)


@areas_app.command("join")
def areas_join(
    table: Annotated[Path, typer.Argument(help="CSV with one row per area, e.g. population per community.")],
    on: Annotated[str, typer.Option(help="Column of the table naming the area (its code or name).")],
    out: Annotated[Path, typer.Option(help="Layer to write: .geojson, .gpkg or .parquet.")],
    db: DbOption = None,
    level: Annotated[str, typer.Option(help="district, street or community.")] = "community",
    alias: Annotated[list[str] | None, typer.Option("--alias", help="VALUE=AREA: a table value spelled otherwise "
                                                    "than the area's name or code; repeatable.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Attach a table's rows (e.g. population) to the stored areas they name and write them as a GIS layer.

    Names match ignoring case, spaces and punctuation; the layer feeds `units build --population`."""
    from gridgov.areas import join_table, write_layer
    from gridgov.errors import InputError
    from gridgov.store import Store

    aliases: dict[str, str] = {}
    for text in alias or []:
        value, sep, target = text.partition("=")
        if not sep or not value.strip() or not target.strip():
            raise InputError(f"must look like VALUE=AREA, got {text!r}", field="alias")
        aliases[value.strip()] = target.strip()
    with Store(_settings(db).db_path, read_only=True) as store:
        layer, report = join_table(store, table, on=on, level=level, aliases=aliases)
    report.out = str(write_layer(layer, out))
    if json_out:
        _print_json(report.to_dict())
    else:
        console.print(report.summary(), markup=False, highlight=False)


@units_app.command("build")
def units_build(
    db: DbOption = None,
    size: Annotated[float, typer.Option(help="Cell side in metres.")] = 100.0,
    shape: Annotated[str, typer.Option(help="square or hex.")] = "square",
    population: Annotated[Path | None, typer.Option(help="GIS layer whose counts are shared out to units.")] = None,
    pop_col: Annotated[str | None, typer.Option("--pop-col", help="Column of --population to share out "
                                                "('households' fills households).")] = None,
    json_out: JsonOption = False,
) -> None:
    """Cover the stored district with unit grids and store them with their adjacency."""
    from gridgov.regrid import build_store_units
    from gridgov.store import Store

    with Store(_settings(db).db_path) as store, _progress(not json_out) as progress:
        out = build_store_units(store, size=size, shape=shape, population=population, pop_col=pop_col,
                                progress=progress)
    if json_out:
        _print_json(out)
    else:
        console.print("[green]units built[/green]: " + ", ".join(f"{k} {v}" for k, v in out.items()))


@app.command()
def regrid(
    name: Annotated[str, typer.Option(help="Name of the new layout.")],
    db: DbOption = None,
    n_grids: Annotated[int | None, typer.Option("--n-grids", help="Number of grids.")] = None,
    households: Annotated[str | None, typer.Option(help="Households per grid as MIN-MAX, e.g. 300-500.")] = None,
    weight: Annotated[str, typer.Option(help="demand or households.")] = "demand",
    tolerance: Annotated[float, typer.Option(help="Largest grid load above the mean, as a share.")] = 0.10,
    respect: Annotated[str, typer.Option(help="community, street or none: borders grids never cross.")] = "community",
    minimal_change: Annotated[bool, typer.Option("--minimal-change", help="Start from the current layout and "
                                                 "move as little as possible.")] = False,
    seed: Annotated[int, typer.Option(help="Random seed of the planner.")] = 0,
    json_out: JsonOption = False,
) -> None:
    """Plan a layout and save it as a scenario (the store's first layout becomes current); print its metrics."""
    from gridgov.regrid import regrid as run_regrid
    from gridgov.store import Store

    with Store(_settings(db).db_path) as store, _progress(not json_out) as progress:
        out = run_regrid(store, name=name, n_grids=n_grids, households=households, weight=weight,
                         tolerance=tolerance, respect=respect, minimal_change=minimal_change, seed=seed,
                         progress=progress)
    if json_out:
        _print_json(out)
        return
    table = Table("metric", "value")
    for key, value in out.items():
        table.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
    console.print(table)


@export_app.command("layout")
def export_layout_cmd(
    name: Annotated[str, typer.Argument(help="Layout name.")],
    db: DbOption = None,
    fmt: Annotated[str, typer.Option("--format", help="geojson, gpkg or parquet.")] = "geojson",
    out: Annotated[Path | None, typer.Option("--out", help="Output file (default <name>.<ext> here).")] = None,
    json_out: JsonOption = False,
) -> None:
    """Write a layout's grids with codes and figures, plus the old→new mapping CSV next to it."""
    from gridgov.regrid import export_layout
    from gridgov.store import Store

    ext = {"geojson": "geojson", "gpkg": "gpkg", "parquet": "parquet"}.get(fmt, fmt)
    path = out or Path(f"{name}.{ext}")
    with Store(_settings(db).db_path, read_only=True) as store:
        result = export_layout(store, name, path, fmt=fmt)
    if json_out:
        _print_json(result)
    else:
        console.print(f"[green]{result['n_grids']} grids written[/green] to {result['path']}"
                      + (f"; mapping in {result['mapping']}" if result["mapping"] else ""))


# -- grid workers, assignment, staffing -----------------------------------------------------------------------------

workers_app = typer.Typer(no_args_is_help=True, help="The roster of grid workers: import, list, add, edit, deactivate.")
app.add_typer(workers_app, name="workers")
LayoutOption = Annotated[str | None, typer.Option("--layout", help="Layout name (default: the current layout).")]


def _layout(store: Any, name: str | None) -> int:
    from gridgov.errors import StoreError

    if name:
        return int(store.layout_id(name))
    lid = store.current_layout_id()
    if lid is None:
        raise StoreError("the store has no current layout yet; build one with `gridgov demo` or `gridgov regrid`")
    return int(lid)


def _community_names(store: Any) -> dict[str, str]:
    areas = store.admin_areas("community")
    return dict(zip(areas["code"].astype(str), areas["name"].astype(str), strict=True))


def _records(frame: Any) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (NaN as null)."""
    return json.loads(frame.to_json(orient="records", force_ascii=False, double_precision=4))


@workers_app.command("import")
def workers_import(
    file: Annotated[Path, typer.Argument(help="Roster CSV: id, name, phone, hours per week, base community, active.")],
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Import a roster CSV; bad rows are rejected with field and row, the same file twice changes nothing."""
    from gridgov.store import Store
    from gridgov.workers import import_roster

    with Store(_settings(db).db_path) as store:
        result = import_roster(store, file)
    if json_out:
        _print_json(result.to_dict())
    else:
        console.print(result.summary(), markup=False, highlight=False)


@workers_app.command("list")
def workers_list(
    db: DbOption = None,
    layout: LayoutOption = None,
    inactive: Annotated[bool, typer.Option("--inactive/--active-only", help="Include inactive workers.")] = True,
    json_out: JsonOption = False,
) -> None:
    """The roster with each worker's grids in the layout."""
    from gridgov.store import Store

    with Store(_settings(db).db_path, read_only=True) as store:
        roster = store.workers()
        lid = store.current_layout_id() if layout is None else store.layout_id(layout)
        held = store.assignments(lid) if lid is not None else None
    if not inactive:
        roster = roster[roster["active"]]
    grids: dict[str, list[str]] = {}
    if held is not None:
        for r in held.itertuples(index=False):
            grids.setdefault(str(r.worker_id), []).append(f"{r.grid_code}{'' if r.role == 'primary' else ' (b)'}")
    roster = roster.assign(grids=[", ".join(grids.get(str(w), [])) for w in roster["worker_id"]])
    if json_out:
        _print_json(_records(roster))
        return
    table = Table("id", "name", "phone", "h/week", "community", "active", "grids")
    for r in roster.itertuples(index=False):
        table.add_row(str(r.worker_id), str(r.name), str(r.phone or ""), f"{r.hours_per_week:g}",
                      str(r.base_community or ""), "yes" if r.active else "no", r.grids)
    console.print(table)


@workers_app.command("add")
def workers_add(
    worker_id: Annotated[str, typer.Argument(help="New worker id.")],
    name: Annotated[str, typer.Option(help="Full name.")],
    hours: Annotated[float, typer.Option(help="Hours per week (> 0, <= 84).")],
    db: DbOption = None,
    phone: Annotated[str | None, typer.Option(help="Mobile or landline with area code.")] = None,
    community: Annotated[str | None, typer.Option(help="Base community code.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Add a worker to the roster."""
    from gridgov.store import Store
    from gridgov.workers import add_worker

    with Store(_settings(db).db_path) as store:
        rec = add_worker(store, worker_id=worker_id, name=name, hours_per_week=hours, phone=phone,
                         base_community=community)
    if json_out:
        _print_json(rec)
    else:
        console.print(f"[green]added[/green] {worker_id}", highlight=False)


@workers_app.command("edit")
def workers_edit(
    worker_id: Annotated[str, typer.Argument(help="Worker id.")],
    db: DbOption = None,
    name: Annotated[str | None, typer.Option(help="Full name.")] = None,
    hours: Annotated[float | None, typer.Option(help="Hours per week (> 0, <= 84).")] = None,
    phone: Annotated[str | None, typer.Option(help="Phone; '' clears it.")] = None,
    community: Annotated[str | None, typer.Option(help="Base community code; '' clears it.")] = None,
    active: Annotated[bool | None, typer.Option("--active/--inactive", help="Mark active or inactive.",
                                                show_default=False)] = None,
    json_out: JsonOption = False,
) -> None:
    """Change a worker's name, hours, phone, community or active flag."""
    from gridgov.store import Store
    from gridgov.workers import edit_worker

    with Store(_settings(db).db_path) as store:
        rec = edit_worker(store, worker_id, name=name, hours_per_week=hours, phone=phone, base_community=community,
                          active=active)
    if json_out:
        _print_json(rec)
    else:
        console.print(f"[green]updated[/green] {worker_id}", highlight=False)


@workers_app.command("deactivate")
def workers_deactivate(
    worker_id: Annotated[str, typer.Argument(help="Worker id.")],
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Mark a worker inactive; their grids in the current layout are listed as needing a new primary."""
    from gridgov.store import Store
    from gridgov.workers import deactivate_worker

    with Store(_settings(db).db_path) as store:
        grids = deactivate_worker(store, worker_id)
    if json_out:
        _print_json({"worker_id": worker_id, "active": False, "grids_needing_primary": grids})
        return
    console.print(f"[green]deactivated[/green] {worker_id}", highlight=False)
    if grids:
        console.print(f"grids now without an active primary: {', '.join(grids)} (run `gridgov assign --auto` or "
                      "set one on the staffing page)", markup=False, highlight=False)


def _staffing_summary(rep: Any) -> dict[str, Any]:
    out = rep.to_dict()
    out["totals"] = {k: round(v, 2) for k, v in out["totals"].items()}
    out["coverage"] = {k: (None if v != v else round(v, 4)) for k, v in out["coverage"].items()}
    return out


def _print_staffing_totals(rep: Any) -> None:
    t, c = rep.totals, rep.coverage

    def pct(v: float) -> str:
        return "—" if v != v else f"{v:.1%}"

    table = Table("what", "value")
    table.add_row("grids", f"{t['grids']:.0f} (uncovered {t['uncovered']:.0f}, under {t['under']:.0f}, "
                           f"ok {t['ok']:.0f}, over {t['over']:.0f})")
    table.add_row("coverage", f"grids {pct(c['grids'])}, households {pct(c['households'])}, "
                              f"incidents {pct(c['incidents'])}")
    table.add_row("demand h/week", f"{t['demand_hours']:.1f}")
    table.add_row("supply h/week", f"{t['supply_hours']:.1f}")
    table.add_row("gap h/week", f"{t['gap_hours']:.1f} ({t['gap_fte']:.1f} FTE); surplus {t['surplus_hours']:.1f}")
    table.add_row("overloaded workers", f"{t['overloaded_workers']:.0f}")
    table.add_row("to hire", f"{rep.need.workers} worker(s), {rep.need.hours:.1f} h/week")
    console.print(table)


@app.command()
def assign(
    db: DbOption = None,
    auto: Annotated[bool, typer.Option("--auto", help="Assign workers automatically (manual rows are kept) "
                                       "and save.")] = False,
    keep_auto: Annotated[bool, typer.Option("--keep-auto", help="With --auto: keep existing automatic rows and "
                                            "only fill gaps.")] = False,
    layout: LayoutOption = None,
    seed: Annotated[int, typer.Option(help="Seed of the auto-assignment's tie-breaks.")] = 0,
    json_out: JsonOption = False,
) -> None:
    """Show coverage and gap totals of a layout's assignments; with --auto, reassign automatically first."""
    from gridgov.staffing import StaffingParams, report, store_demand
    from gridgov.store import Store
    from gridgov.workers import auto_assign

    settings = _settings(db)
    params = StaffingParams.from_settings(settings)
    with Store(settings.db_path, read_only=not auto) as store:
        lid = _layout(store, layout)
        demand, counts = store_demand(store, lid, params=params, now=settings.clock())
        roster = store.workers()
        rows = store.assignments(lid)
        result = None
        if auto:
            result = auto_assign(demand, roster, rows, store.grid_adjacency(lid), params, seed=seed,
                                 keep_auto=keep_auto, community_names=_community_names(store))
            store.write_assignments(lid, result.assignments)
            rows = store.assignments(lid)
        rep = report(demand, rows, roster, params, incidents=counts)
    if json_out:
        out = _staffing_summary(rep)
        out["layout_id"] = lid
        if result is not None:
            out["auto"] = result.to_dict()
        _print_json(out)
        return
    if result is not None:
        for line in result.messages:
            console.print(line, markup=False, highlight=False)
    _print_staffing_totals(rep)


_SORTS = {"gap": ("gap_hours", False), "share": ("gap_share", False), "code": ("grid_code", True),
          "demand": ("demand_hours", False), "supply": ("supply_hours", False)}


@app.command()
def staffing(
    db: DbOption = None,
    layout: LayoutOption = None,
    sort: Annotated[str, typer.Option(help="gap, share, code, demand or supply.")] = "code",
    street: Annotated[str | None, typer.Option(help="Only the grids of this street code.")] = None,
    window_days: Annotated[int | None, typer.Option("--window-days", help="Incident window ending now "
                                                    "(default 91 or the [staffing] setting).")] = None,
    json_out: JsonOption = False,
) -> None:
    """Per-grid staffing table: demand, supply, gap (hours and FTE), status and workers."""
    from gridgov.errors import InputError
    from gridgov.staffing import StaffingParams, staffing_report

    if sort not in _SORTS:
        raise InputError(f"must be one of {', '.join(_SORTS)}, got {sort!r}", field="--sort")
    from gridgov.store import Store

    settings = _settings(db)
    params = StaffingParams.from_settings(settings, window_days=window_days)
    with Store(settings.db_path, read_only=True) as store:
        lid = _layout(store, layout)
        rep = staffing_report(store, lid, params=params, now=settings.clock())
    table = rep.table
    if street:
        table = table[table["street_code"] == street]
        if table.empty:
            raise InputError(f"no grid of layout {lid} lies in street {street!r}", field="--street")
    col, asc = _SORTS[sort]
    table = table.sort_values([col, "grid_code"], ascending=[asc, True], kind="stable")
    cols = ["grid_code", "community_code", "street_code", "demand_hours", "incident_hours", "patrol_hours",
            "visit_hours", "supply_hours", "gap_hours", "gap_fte", "gap_share", "status", "primary_id",
            "primary_name", "backup_ids", "incidents"]
    if json_out:
        out = _staffing_summary(rep)
        out["layout_id"] = lid
        out["grids"] = _records(table[[c for c in cols if c in table.columns]])
        _print_json(out)
        return
    t = Table("grid", "community", "demand h", "supply h", "gap h", "gap FTE", "status", "primary", "backups")
    for r in table.itertuples(index=False):
        t.add_row(r.grid_code, r.community_code, f"{r.demand_hours:.1f}", f"{r.supply_hours:.1f}",
                  f"{r.gap_hours:+.1f}", f"{r.gap_fte:+.2f}", r.status,
                  f"{r.primary_id} {r.primary_name}" if r.primary_id else "—", r.backup_ids or "")
    console.print(t)
    _print_staffing_totals(rep)


# -- scenarios, adoption, replay --------------------------------------------------------------------------------------

scenarios_app = typer.Typer(help="Saved layouts: list, rename, delete, compare, and the outlier test.",
                            invoke_without_command=True)
app.add_typer(scenarios_app, name="scenarios")


@scenarios_app.callback()
def scenarios_list(ctx: typer.Context, db: DbOption = None, json_out: JsonOption = False) -> None:
    """List the layouts (current, scenarios, archived) with their grid counts; subcommands act on them."""
    if ctx.invoked_subcommand is not None:
        return
    from gridgov.store import Store

    with Store(_settings(db).db_path, read_only=True) as store:
        layouts = store.layouts()
    frame = layouts[["layout_id", "name", "status", "n_grids", "created_at", "parent_id"]]
    if json_out:
        _print_json({"layouts": _records(frame)})
        return
    table = Table("id", "name", "status", "grids", "created", "from")
    for r in frame.itertuples(index=False):
        table.add_row(str(r.layout_id), r.name, r.status, str(r.n_grids), str(r.created_at),
                      "" if _missing(r.parent_id) else str(int(r.parent_id)))
    console.print(table)


@scenarios_app.command("rename")
def scenarios_rename(old: Annotated[str, typer.Argument(help="Layout name.")],
                     new: Annotated[str, typer.Argument(help="New name.")], db: DbOption = None) -> None:
    """Rename a layout."""
    from gridgov.store import Store

    with Store(_settings(db).db_path) as store:
        store.rename_layout(old, new)
    console.print(f"renamed {old!r} to {new!r}")


@scenarios_app.command("delete")
def scenarios_delete(name: Annotated[str, typer.Argument(help="Scenario name.")], db: DbOption = None) -> None:
    """Delete a scenario (current and archived layouts are kept)."""
    from gridgov.store import Store

    with Store(_settings(db).db_path) as store:
        store.delete_layout(name)
    console.print(f"deleted scenario {name!r}")


def _household_range(value: str | None) -> tuple[float, float] | None:
    if not value:
        return None
    from gridgov.regrid import _parse_range

    return _parse_range(value)


@scenarios_app.command("compare")
def scenarios_compare(
    a: Annotated[str, typer.Argument(help="First layout (e.g. the current one).")],
    b: Annotated[str, typer.Argument(help="Second layout.")],
    db: DbOption = None,
    households: Annotated[str | None, typer.Option(help="The city's households per grid as MIN-MAX, to count "
                                                   "grids outside it.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Compare two layouts: balance, households, compactness, what moves, staffing gap and replay forecast."""
    from gridgov import replay, scenarios
    from gridgov.staffing import StaffingParams
    from gridgov.store import Store

    settings = _settings(db)
    rng = _household_range(households)
    with Store(settings.db_path, read_only=True) as store:
        now = settings.clock()
        ida, idb = store.layout_id(a), store.layout_id(b)
        params = StaffingParams.from_settings(settings)
        model = replay.calibrate_store(store, now=now, calendar=settings.calendar).model
        fa = scenarios.figures(store, ida, now=now, model=model, household_range=rng, params=params)
        fb = scenarios.figures(store, idb, now=now, model=model, household_range=rng, params=params,
                               reference_id=ida)
    table = scenarios.compare(fa, fb)
    if json_out:
        _print_json({"a": a, "b": b, "rows": _records(table)})
        return
    out = Table("metric", a, b, "change")
    for r in table.itertuples(index=False):
        mark = {True: "[green]better[/green]", False: "[red]worse[/red]"}.get(r.better, "")
        out.add_row(r.metric, _fmt(r.a), _fmt(r.b), f"{_fmt(r.change)} {mark}".strip())
    console.print(out)


def _missing(value: Any) -> bool:
    import pandas as pd

    return value is None or bool(pd.isna(value))


def _fmt(value: Any) -> str:
    if _missing(value):
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


@scenarios_app.command("outlier")
def scenarios_outlier(
    db: DbOption = None,
    layout: LayoutOption = None,
    n: Annotated[int, typer.Option("--n", help="How many alternative layouts to draw.")] = 100,
    seed: Annotated[int, typer.Option(help="First seed of the samples.")] = 0,
    json_out: JsonOption = False,
) -> None:
    """Is this layout unusual? Place it among n layouts the grid engine draws at the same grid count."""
    from gridgov.scenarios import outlier
    from gridgov.store import Store

    with Store(_settings(db).db_path, read_only=True) as store, _progress(not json_out) as progress:
        res = outlier(store, _layout(store, layout), n=n, seed=seed, progress=progress)
    out = {"balance_percentile": res.balance_percentile, "compactness_percentile": res.compactness_percentile,
           "max_over_mean": res.layout_max_over_mean, "pp_median": res.layout_pp_median,
           "samples": len(res.samples), "samples_max_over_mean_median": float(res.samples["max_over_mean"].median()),
           "samples_pp_median_median": float(res.samples["pp_median"].median())}
    if json_out:
        _print_json(out)
        return
    console.print(f"max/mean {res.layout_max_over_mean:.3f}: {res.balance_percentile:.0f} % of {len(res.samples)} "
                  f"sampled layouts are at least as balanced (median {out['samples_max_over_mean_median']:.3f})")
    console.print(f"Polsby–Popper median {res.layout_pp_median:.3f}: {res.compactness_percentile:.0f} % are at least "
                  f"as compact (median {out['samples_pp_median_median']:.3f})")


@app.command()
def adopt(name: Annotated[str, typer.Argument(help="Scenario to make current (or an archived layout: undo).")],
          db: DbOption = None, json_out: JsonOption = False) -> None:
    """Make a scenario the current layout: codes re-issued, workers carried with their areas, old layout archived."""
    from gridgov.scenarios import adopt as run_adopt
    from gridgov.store import Store

    with Store(_settings(db).db_path) as store:
        res = run_adopt(store, name)
        archived = (store.layouts().set_index("layout_id").loc[res.archived_id, "name"]
                    if res.archived_id is not None else None)
    out = {**res.summary(), "archived": archived}
    if json_out:
        _print_json(out)
        return
    verb = "restored" if res.restored else "adopted"
    console.print(f"[green]{verb} {name!r}[/green]" + (f"; {archived!r} archived (adopt it to undo)" if archived
                                                       else ""))
    if not res.restored:
        console.print(f"codes: {res.kept_codes} kept, {res.new_codes} new; {len(res.assignments)} assignments carried")
    if res.review:
        console.print(f"grids to review ({len(res.review)}): {', '.join(res.review[:12])}"
                      + (" …" if len(res.review) > 12 else ""))
    if res.without_area:
        console.print(f"workers without an area now ({len(res.without_area)}): {', '.join(res.without_area[:12])}"
                      + (" …" if len(res.without_area) > 12 else ""))


@app.command("replay")
def replay_cmd(
    db: DbOption = None,
    layout: LayoutOption = None,
    months: Annotated[int, typer.Option(help="Months of history up to now.")] = 6,
    json_out: JsonOption = False,
) -> None:
    """Replay past incidents on a layout: weekly workload per grid and the forecast on-time rate, with the model's
    calibration error on the current layout."""
    from gridgov import replay
    from gridgov.store import Store

    settings = _settings(db)
    params = replay.ReplayParams(months=months)
    with Store(settings.db_path, read_only=True) as store:
        now = settings.clock()
        cal = replay.calibrate_store(store, now=now, calendar=settings.calendar, params=params)
        result = replay.replay_store(store, _layout(store, layout), now=now, model=cal.model,
                                     calendar=settings.calendar, params=params)
    calib = {"case_share": cal.model.case_share, "recorded": cal.recorded, "forecast": cal.forecast,
             "error_points": cal.error_points, "grid_error_points": cal.grid_error_points, "cases": cal.cases,
             "holdout_from": cal.holdout_period[0], "notes": cal.notes}
    if json_out:
        _print_json({"calibration": calib, "forecast_on_time": result.forecast_on_time,
                     "recorded_on_time": result.recorded_on_time, "weeks": result.weeks,
                     "seconds": result.seconds, "grids": _records(result.grids)})
        return
    t = Table("grid", "cases", "h/week mean", "h/week p90", "case hours", "forecast", "recorded", "set aside")
    for r in result.grids.itertuples(index=False):
        t.add_row(r.grid_code, str(r.cases), f"{r.weekly_hours_mean:.1f}", f"{r.weekly_hours_p90:.1f}",
                  f"{r.capacity_hours:.0f}", _pct(r.forecast_on_time), _pct(r.recorded_on_time), str(r.set_aside))
    console.print(t)
    console.print(f"forecast on time {_pct(result.forecast_on_time)} (recorded {_pct(result.recorded_on_time)}); "
                  f"calibration on the current layout: {cal.error_points:+.1f} points on the held-out stretch from "
                  f"{cal.holdout_period[0]:%Y-%m-%d}"
                  + (f", per grid {cal.grid_error_points:.1f}" if cal.grid_error_points is not None else ""))
    for note in cal.notes:
        console.print(f"note: {note}")


def _pct(value: Any) -> str:
    return "—" if _missing(value) else f"{value:.1%}"


# -- users ----------------------------------------------------------------------------------------------------------

user_app = typer.Typer(no_args_is_help=True, help="Dashboard users: managers, planners and grid workers.")
app.add_typer(user_app, name="user")
PasswordOption = Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                             help="Asked for when not given (at least 8 characters).")]


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[str, typer.Option(help="manager, planner or worker.")],
    password: PasswordOption,
    db: DbOption = None,
    street: Annotated[str | None, typer.Option(help="A manager's street code (default: the whole district).")] = None,
    worker: Annotated[str | None, typer.Option(help="A worker user's roster id.")] = None,
) -> None:
    """Add a user."""
    from gridgov.auth import add_user
    from gridgov.store import Store

    with Store(_settings(db).db_path) as store:
        user = add_user(store, username, password, role=role, street_code=street, worker_id=worker)
    console.print(f"added {user.role} {user.username!r}")


@user_app.command("passwd")
def user_passwd(username: Annotated[str, typer.Argument(help="Login name.")], password: PasswordOption,
                db: DbOption = None) -> None:
    """Set a user's password (a demo password then stops counting as one)."""
    from gridgov.auth import set_password
    from gridgov.store import Store

    with Store(_settings(db).db_path) as store:
        set_password(store, username, password)
    console.print(f"password of {username!r} changed")


@user_app.command("list")
def user_list(db: DbOption = None, json_out: JsonOption = False) -> None:
    """List users with their role and scope (never their passwords)."""
    from gridgov.store import Store

    with Store(_settings(db).db_path, read_only=True) as store:
        users = store.users()
    if json_out:
        _print_json({"users": _records(users)})
        return
    table = Table("user", "role", "street", "worker", "demo password")
    for r in users.itertuples(index=False):
        table.add_row(r.username, r.role, "" if _missing(r.street_code) else r.street_code,
                      "" if _missing(r.worker_id) else r.worker_id, "yes" if r.demo_password else "")
    console.print(table)


# -- intake API keys ------------------------------------------------------------------------------------------------

apikey_app = typer.Typer(no_args_is_help=True, help="Keys of the intake API's clients (hotline systems, apps).")
app.add_typer(apikey_app, name="apikey")


@apikey_app.command("add")
def apikey_add(client_id: Annotated[str, typer.Argument(help="Short id, e.g. hotline-12345.")],
               name: Annotated[str, typer.Option(help="Who the client is.")], db: DbOption = None) -> None:
    """Register a client and print its key (once: only a hash is stored)."""
    from gridgov.intake import create_client
    from gridgov.store import Store

    with Store(_settings(db).db_path) as store:
        key = create_client(store, client_id, name)
    console.print(f"key of {client_id!r} (store it now; it is not shown again):")
    sys.stdout.write(key + "\n")


@apikey_app.command("list")
def apikey_list(db: DbOption = None, json_out: JsonOption = False) -> None:
    """List the clients (never their keys)."""
    from gridgov.store import Store

    with Store(_settings(db).db_path, read_only=True) as store:
        clients = store.api_clients()
    if json_out:
        _print_json({"clients": _records(clients)})
        return
    table = Table("client", "name", "active", "created")
    for r in clients.itertuples(index=False):
        table.add_row(r.client_id, r.name, "yes" if r.active else "no", str(r.created_at))
    console.print(table)


@apikey_app.command("disable")
def apikey_disable(client_id: Annotated[str, typer.Argument(help="Client id.")], db: DbOption = None) -> None:
    """Switch a client's key off (its cases stay)."""
    from gridgov.store import Store

    with Store(_settings(db).db_path) as store:
        store.set_api_client_active(client_id, False)
    console.print(f"key of {client_id!r} disabled")


def main() -> None:
    """Entry point of the ``gridgov`` console script: errors of ours print as one line, exit code 2."""
    try:
        app(standalone_mode=False)
    except GridgovError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2) from None
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        raise SystemExit(1) from None
    except Exception as exc:  # click usage errors come through here in non-standalone mode
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            raise SystemExit(exc.exit_code) from None
        raise


if __name__ == "__main__":
    main()
