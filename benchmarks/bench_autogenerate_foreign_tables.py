"""Benchmark: autogenerate for one cog in a database crowded with other cogs' and unknown tables.

The example bot (``examples/demobot``) is migrated to head; then ``--tables`` foreign tables
(default 2,000: three quarters belong to made-up cogs, ten tables each counting their
``alembic_version_<cog>`` table, the rest unknown hand-made tables; each with an index, the
made-up cogs' with foreign keys) are added next to its tables.  ``alembic check`` for the ``economy`` cog then
runs against the database without and with the foreign tables, through two environments:

* **ours**: the ``nxcog`` env.py, ``alembic -x cog=economy check``.  Its ``include_name`` hook
  keeps foreign tables from being reflected at all;
* **stock**: Alembic's own ``generic`` env.py, given the same models as ``target_metadata``,
  the cog's version table and revisions folder, and an ``include_object`` hook that accepts
  the same tables (and no drops).  Without ``include_name`` Alembic reflects every table in
  the database before ``include_object`` can reject it.

Both use the same synchronous driver (``sqlite``; ``postgresql+psycopg`` when a PostgreSQL
server can be started, see ``--postgres``).  ``check`` runs the whole autogenerate
comparison and writes nothing.  Before timing, both environments must pass ``check`` on the
crowded database and fail it on a copy with a stray column in one of the cog's tables, so
both are known to compare the cog's tables for real.

Measured two ways, side by side:

* **in-process** (the targets are judged on these): one Python process per environment and
  database runs ``alembic.command.check`` once to warm up (imports, bot discovery), then
  ``--runs`` more times, each timed from building the ``Config`` to the end of the command;
* **whole process**: ``alembic ... check`` as a user types it, ``--process-runs`` times, which
  adds about a second of interpreter start-up and imports to every run.

For SQLite the table also shows the time to open the file and run a first statement with
no Alembic at all: SQLite parses every table's ``CREATE`` statement on a connection's first
statement, a cost each client pays once per connection, however few tables it reads.

Targets: ours at 2,000 foreign tables within 1.5x of ours at 0; stock at least 5x slower
than ours at 2,000.  Run with ``make bench`` or ``.venv/bin/python -P`` on this file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # machine.py, also under python -P
from machine import cpu_model

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ALEMBIC = str(BIN / "alembic")
NXALEMBIC = str(BIN / "nxalembic")
COG = "economy"
PLACEHOLDER = "driver://user:pass@localhost/dbname"

#: What a stock user adds to Alembic's generic env.py to get the same comparison as ours.
STOCK_ENV_HEADER = '''\
import demobot.main  # noqa: F401  (loads every extension, so every model is defined)
from demobot.db import metadata

COG = "{cog}"
OWN = {{t.name for t in metadata.sorted_tables if t.name.startswith(COG + "_")}}


def include_object(obj, name, type_, reflected, compare_to):
    """Compare only the cog's own tables; never propose dropping a table."""
    if type_ == "table":
        return name in OWN and not (reflected and compare_to is None)
    table = getattr(obj, "table", None)
    return table is None or table.name in OWN

'''

STOCK_CONFIGURE = (
    "target_metadata=target_metadata, version_table='alembic_version_' + COG, "
    "include_object=include_object, compare_type=True"
)


# -- the scene: bot, environments, databases ------------------------------------------------


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        args,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def make_bot(root: Path, setup_url: str) -> None:
    """The example bot with an nxcog environment and one revision per cog."""
    shutil.copytree(
        REPO / "examples" / "demobot", root / "demobot", ignore=shutil.ignore_patterns("__pycache__", "*.db")
    )
    shutil.copy(REPO / "examples" / "nxalembic.ini", root / "nxalembic.ini")
    run([ALEMBIC, "init", "-t", "nxcog", "migrations"], root)
    run([NXALEMBIC, "-q", "migrate", "-m", "init"], root, {"DEMOBOT_DATABASE_URL": setup_url})


def make_stock_environment(root: Path) -> Path:
    """``alembic init -t generic`` in ``stock/``, edited as a stock user would; returns its folder.

    The generic env.py takes its URL from ``sqlalchemy.url`` only, so every scene gets an ini
    of its own (:func:`stock_ini`).
    """
    folder = root / "stock"
    folder.mkdir()
    run([ALEMBIC, "init", "-t", "generic", "scripts"], folder)
    ini = folder / "alembic.ini"
    text = ini.read_text()
    text = text.replace("prepend_sys_path = .", f"prepend_sys_path = {root}")
    text = text.replace(
        "[alembic]\n", f"[alembic]\nversion_locations = {root / 'migrations' / 'versions' / COG}\n", 1
    )
    ini.write_text(text)
    env_py = folder / "scripts" / "env.py"
    text = env_py.read_text()
    for old, new in (
        ("target_metadata = None\n", STOCK_ENV_HEADER.format(cog=COG) + "target_metadata = metadata\n"),
        ("target_metadata=target_metadata", STOCK_CONFIGURE),
    ):
        if old not in text:
            sys.exit(f"Alembic's generic env.py changed: {old.strip()!r} not found")
        text = text.replace(old, new)
    env_py.write_text(text)
    return folder


def stock_ini(folder: Path, scene: Scene) -> Path:
    """The stock environment's alembic.ini with ``sqlalchemy.url`` pointing at *scene*."""
    ini = folder / f"alembic-{scene.backend}-{scene.foreign}.ini"
    if not ini.exists():
        text = (folder / "alembic.ini").read_text()
        if PLACEHOLDER not in text:
            sys.exit("Alembic's generic alembic.ini changed: no placeholder sqlalchemy.url")
        ini.write_text(text.replace(PLACEHOLDER, scene.url.replace("%", "%%")))
    return ini


def foreign_ddl(count: int) -> Iterator[str]:
    """``count`` tables that are not the cog's: made-up cogs (with version tables) and unknown ones."""
    cogs = count * 3 // 4 // 10
    for number in range(cogs):
        cog = f"guildcog{number:03d}"
        for table in range(9):
            parent = f', parent_id INTEGER REFERENCES "{cog}_t0" (id)' if table else ""
            yield from _table(f"{cog}_t{table}", parent)
        yield (
            f'CREATE TABLE "alembic_version_{cog}" (version_num VARCHAR(32) NOT NULL, '
            f'CONSTRAINT "alembic_version_{cog}_pkc" PRIMARY KEY (version_num))'
        )
        yield f"INSERT INTO \"alembic_version_{cog}\" VALUES ('{number:012x}')"
    for number in range(count - cogs * 10):
        yield from _table(f"legacy_{number:04d}", "")


def _table(name: str, extra: str) -> Iterator[str]:
    yield (
        f'CREATE TABLE "{name}" (id INTEGER NOT NULL PRIMARY KEY, guild_id BIGINT NOT NULL, '
        f"name VARCHAR(100) NOT NULL, score INTEGER DEFAULT 0 NOT NULL, created_at TIMESTAMP{extra})"
    )
    yield f'CREATE INDEX "ix_{name}_guild_id" ON "{name}" (guild_id)'


@dataclass
class Scene:
    """One database at the cog's head, with or without foreign tables."""

    backend: str
    foreign: int
    url: str  # synchronous driver: what both environments are given


def sqlite_scenes(root: Path, counts: list[int]) -> list[Scene]:
    """SQLite databases at head with *counts* foreign tables, then the canary of :func:`verify`."""
    base = root / "base.db"
    make_bot(root, f"sqlite+aiosqlite:///{base}")
    run([NXALEMBIC, "-q", "upgrade"], root, {"DEMOBOT_DATABASE_URL": f"sqlite+aiosqlite:///{base}"})
    canary = root / "canary.db"
    shutil.copy(base, canary)
    with sqlite3.connect(canary) as conn:
        conn.execute(f"ALTER TABLE {COG}_wallets ADD COLUMN stray INTEGER")
    scenes = []
    for count in counts:
        path = root / f"foreign{count}.db"
        shutil.copy(base, path)
        with sqlite3.connect(path) as conn:
            for statement in foreign_ddl(count):
                conn.execute(statement)
        scenes.append(Scene("sqlite", count, f"sqlite:///{path}"))
    return [*scenes, Scene("sqlite", -1, f"sqlite:///{canary}")]


def postgres_scenes(root: Path, counts: list[int], server: object) -> list[Scene]:
    import psycopg

    scenes = []
    for count in counts:
        name = f"bench_foreign{count}"
        server.create_database(name)  # type: ignore[attr-defined]
        url = server.url(name, driver="psycopg")  # type: ignore[attr-defined]
        run([NXALEMBIC, "-q", "upgrade"], root, {"DEMOBOT_DATABASE_URL": server.url(name)})  # type: ignore[attr-defined]
        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
            for number, statement in enumerate(foreign_ddl(count)):
                conn.execute(statement)
                if number % 300 == 299:  # keep each transaction's lock count modest
                    conn.commit()
        scenes.append(Scene("postgresql", count, url))
    return scenes


# -- measuring ---------------------------------------------------------------------------------


def worker(ini: str, xargs: list[str], runs: int) -> None:
    """In a process of its own: warm up once, then time ``alembic.command.check`` *runs* times."""
    from alembic import command
    from alembic.config import CommandLine, Config

    argv = ["-c", ini, *[a for x in xargs for a in ("-x", x)], "check"]
    options = CommandLine(prog="alembic").parser.parse_args(argv)

    def once() -> float:
        start = time.perf_counter()
        config = Config(file_=ini, ini_section=options.name, cmd_opts=options)
        command.check(config)
        return time.perf_counter() - start

    once()
    print(json.dumps([once() for _ in range(runs)]))


@dataclass
class Environment:
    """How one environment runs ``check`` on a scene: its alembic.ini and ``-x`` arguments."""

    name: str
    command: Callable[[Scene], tuple[Path, list[str]]]


def in_process(env: Environment, scene: Scene, runs: int, root: Path) -> list[float]:
    ini, xargs = env.command(scene)
    args = [sys.executable, "-P", __file__, "--worker", str(ini), "--runs", str(runs)]
    for x in xargs:
        args += ["--x", x]
    return json.loads(run(args, root).strip().splitlines()[-1])


def whole_process(env: Environment, scene: Scene, runs: int, root: Path) -> list[float]:
    ini, xargs = env.command(scene)
    args = [ALEMBIC, "-c", str(ini), *[a for x in xargs for a in ("-x", x)], "check"]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run(args, root)
        times.append(time.perf_counter() - start)
    return times


def verify(envs: list[Environment], scene: Scene, canary: Scene, root: Path) -> None:
    """Both environments pass ``check`` on *scene* and fail it on *canary* (a stray column in one
    of the cog's tables): proof that each really compares the cog's tables, so the timings
    are of the same work."""
    for env in envs:
        for target, must_pass in ((scene, True), (canary, False)):
            ini, xargs = env.command(target)
            args = [ALEMBIC, "-c", str(ini), *[a for x in xargs for a in ("-x", x)], "check"]
            proc = subprocess.run(args, cwd=root, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            detected = "New upgrade operations detected" in proc.stdout + proc.stderr
            if (proc.returncode == 0) != must_pass or detected == must_pass:
                sys.exit(
                    f"{env.name}: check on {target.url} should "
                    f"{'pass' if must_pass else 'find the stray column'}:\n"
                    f"{proc.stdout}{proc.stderr}"
                )


def sqlite_open_floor(scene: Scene, runs: int = 21) -> float:
    """Median time to open the SQLite file and run a first statement, with no Alembic at all.

    SQLite parses the whole schema (every CREATE statement) on a connection's first
    statement, so every client pays this on every connection: a floor nobody can go under.
    """
    path = scene.url.removeprefix("sqlite:///")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        conn = sqlite3.connect(path)
        conn.execute(f'PRAGMA main.table_info("alembic_version_{COG}")').fetchall()
        conn.close()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def report(
    scenes: list[Scene], label: str, results: dict[tuple[str, int], list[float]], counts: list[int]
) -> None:
    med = {key: statistics.median(values) for key, values in results.items()}
    low, high = counts
    backend = scenes[0].backend
    floors = {s.foreign: sqlite_open_floor(s) for s in scenes} if backend == "sqlite" else {}
    print(f"\n{backend}, {label} (median of {len(next(iter(results.values())))} runs, seconds):")
    print(
        f"  {'foreign tables':>15} {'ours':>9} {'stock':>9} {'stock/ours':>11}"
        + (f" {'sqlite open':>12}" if floors else "")
    )
    for count in counts:
        ours, stock = med[("ours", count)], med[("stock", count)]
        print(
            f"  {count:>15} {ours:>9.3f} {stock:>9.3f} {stock / ours:>10.1f}x"
            + (f" {floors[count]:>12.4f}" if floors else "")
        )
    growth = med[("ours", high)] / med[("ours", low)]
    speedup = med[("stock", high)] / med[("ours", high)]
    print(
        f"  ours at {high} / ours at {low}: {growth:.2f}x (target <= 1.5x: "
        f"{'met' if growth <= 1.5 else 'MISSED'})"
    )
    print(f"  stock / ours at {high}: {speedup:.1f}x (target >= 5x: {'met' if speedup >= 5 else 'MISSED'})")
    if floors:
        own = (med[("ours", high)] - floors[high]) / (med[("ours", low)] - floors[low])
        print(
            f"  ('sqlite open' = opening the file + first statement, no Alembic: SQLite parses every table's "
            f"CREATE statement then; ours without it: {own:.2f}x)"
        )


def measure(scenes: list[Scene], envs: list[Environment], options: argparse.Namespace, root: Path) -> None:
    counts = sorted({s.foreign for s in scenes})
    for label, runs, how in (
        ("in-process alembic.command.check", options.runs, in_process),
        ("whole process `alembic ... check`", options.process_runs, whole_process),
    ):
        if runs <= 0:
            continue
        results: dict[tuple[str, int], list[float]] = {}
        for number, scene in enumerate(scenes):
            # alternate the order, so neither environment always runs on warmer caches
            for env in envs if number % 2 == 0 else envs[::-1]:
                results[(env.name, scene.foreign)] = how(env, scene, runs, root)
        report(scenes, label, results, counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=2000, help="foreign tables (default 2000)")
    parser.add_argument("--runs", type=int, default=15, help="timed in-process runs (default 15)")
    parser.add_argument("--process-runs", type=int, default=5, help="whole-process runs (default 5; 0: skip)")
    parser.add_argument(
        "--postgres",
        choices=["auto", "yes", "no"],
        default="auto",
        help="also measure PostgreSQL (auto: when tests/postgres_server.py can start one)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--x", action="append", default=[], help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.worker:
        worker(options.worker, options.x, options.runs)
        return

    counts = [0, options.tables]
    root = Path(tempfile.mkdtemp(prefix="nxalembic-bench-autogen-"))
    try:
        print(
            f"machine: {os.cpu_count()} CPUs, {cpu_model()}, Python {platform.python_version()}, "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        print(
            f"cog {COG!r} of examples/demobot; foreign tables: {counts}; in-process runs: {options.runs} "
            f"(+1 warm-up), whole-process runs: {options.process_runs}",
            flush=True,
        )
        *scenes, canary = sqlite_scenes(root, counts)
        stock = make_stock_environment(root)
        envs = [
            Environment("ours", lambda scene: (root / "alembic.ini", [f"cog={COG}", f"url={scene.url}"])),
            Environment("stock", lambda scene: (stock_ini(stock, scene), [])),
        ]
        verify(envs, scenes[-1], canary, root)
        measure(scenes, envs, options, root)
        if options.postgres != "no":
            postgres(root, counts, envs, options)
        print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def postgres(root: Path, counts: list[int], envs: list[Environment], options: argparse.Namespace) -> None:
    sys.path.insert(0, str(REPO / "tests"))
    from postgres_server import PostgresServer

    try:
        server = PostgresServer().start()
    except Exception as exc:  # no binaries, or the server would not start
        if options.postgres == "yes":
            raise
        print(f"\npostgresql: skipped ({exc})")
        return
    try:
        measure(postgres_scenes(root, counts, server), envs, options, root)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
