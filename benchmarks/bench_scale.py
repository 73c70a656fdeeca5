"""Benchmark: every command's cost against the import floor, for 10 cogs or 500 (issue 12).

Generates, for each ``--cogs`` count N, a bot with N single-file extensions ``cog0`` ...
``cog<N-1>``, each owning one ormar model, on SQLite (``sqlite+aiosqlite``, the example
bot's driver), and times whole processes of the installed package (the venv this script runs
in), median of ``--runs``:

* **floor**: ``python -c "import <bot module>, alembic.command, alembic.config"``, what any
  command must pay to import the bot;
* **first migrate**: ``nxalembic migrate`` writing every cog's first revision (no revision
  files yet, empty database);
* **upgrade (empty)**: ``nxalembic upgrade`` on a fresh database;
* **upgrade (head)**: ``nxalembic upgrade`` with nothing to do (every deploy, every restart);
* **status**, **check**: on the database at head;
* **migrate (1 change)**: ``nxalembic migrate`` after one cog's model gained a column (the
  revision written is removed again after each run);
* **stock current**: ``alembic -x cog=cog0 current``, one cog's stock command, which must not
  grow with the number of other cogs beyond the bot's own import.

With ``--nxalembic033 PYTHON`` (default: ``.venv-nxalembic033/bin/python`` when it exists),
the same bot written for NXAlembic 0.3.3 (``nextcord_ormar``'s ``OrmarApp``/``AppModel`` API,
one revision per cog) is generated for ``--nxalembic033-cogs`` cogs (default 50) and its
``nxalembic upgrade`` from an empty database is timed in the same run.  NXAlembic 0.3.3
installs in a Python 3.10 venv::

    ~/.pyenv/versions/3.10.13/bin/python -m venv .venv-nxalembic033
    .venv-nxalembic033/bin/pip install nextcord-ormar==0.3.3 aiosqlite

The table printed gives seconds and ratios to the floor; the growth table gives the cost
above the floor per cog at each N, divided by that at the smallest N.  ``--clock cpu`` times
each process's user + system CPU seconds instead of the wall clock: on a machine shared with
other work the wall clock of a 1-second process varies by a tenth of a second or more, which
at 10 cogs is more than the whole cost above the floor.  ``make bench`` runs
it with the defaults (10 and 50 cogs, 3 runs); the issue's full measurement is
``--cogs 10,50,200,500 --runs 5``.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # machine.py, also under python -P
from machine import cpu_model, load_average

BIN = Path(sys.executable).parent
PYTHON = sys.executable
ALEMBIC = str(BIN / "alembic")
NXALEMBIC = str(BIN / "nxalembic")
URL_VARIABLE = "BENCHBOT_DATABASE_URL"
DEFAULT_NX033 = Path(__file__).resolve().parent.parent / ".venv-nxalembic033" / "bin" / "python"

DB_MODULE = f'''\
import os

import ormar
import sqlalchemy

database = ormar.DatabaseConnection(os.environ.get("{URL_VARIABLE}", "sqlite+aiosqlite:///bench.db"))
base_config = ormar.OrmarConfig(database=database, metadata=sqlalchemy.MetaData())
'''

MAIN_MODULE = """\
import nextcord
from nextcord.ext import commands

intents = nextcord.Intents.default()
intents.message_content = True
bot = commands.Bot(command_prefix="!", intents=intents)
for number in range({cogs}):
    bot.load_extension(f"benchbot.cogs.cog{{number}}")
"""

COG_MODULE = """\
import ormar
from nextcord.ext import commands

from ..db import base_config


class Item{number}(ormar.Model):
    ormar_config = base_config.copy(tablename="cog{number}_items")

    id: int = ormar.Integer(primary_key=True)
    name: str = ormar.String(max_length=100)
{extra}

class Cog{number}(commands.Cog):
    pass


def setup(bot: commands.Bot) -> None:
    bot.add_cog(Cog{number}())
"""

CHANGE = "    score: int = ormar.Integer(default=0)\n"

# -- the same bot for NXAlembic 0.3.3 (nextcord-ormar's own API) --------------------------------

NX033_MAIN = """\
import os

import nextcord
from nextcord_ormar import Bot

bot = Bot(command_prefix="!", intents=nextcord.Intents.default(),
          database_url=os.environ.get("{variable}", "sqlite:///bench033.db"))
for number in range({cogs}):
    bot.load_extension(f"benchbot033.cogs.cog{{number}}")
"""

NX033_COG = """\
import ormar
from nextcord.ext import commands
from nextcord_ormar import AppModel, OrmarApp

ModelMeta = OrmarApp.create_app("cog{number}")


class Item{number}(AppModel):
    class Meta(ModelMeta):
        pass

    id: int = ormar.Integer(primary_key=True)
    name: str = ormar.String(max_length=100)


class Cog{number}(commands.Cog):
    pass


def setup(bot):
    bot.add_cog(Cog{number}())
"""

COMMANDS = (
    "floor",
    "first migrate",
    "upgrade (empty)",
    "upgrade (head)",
    "status",
    "check",
    "migrate (1 change)",
    "stock current",
)
#: The commands whose growth per cog the issue bounds (cost above the floor, per cog).
GROWTH = ("first migrate", "upgrade (empty)", "upgrade (head)", "status", "check", "migrate (1 change)")


#: The clock of every measurement: "wall" (seconds elapsed) or "cpu" (the process's user +
#: system CPU seconds, which other work on a shared machine disturbs much less).
CLOCK = "wall"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Run one process to its end; its wall or CPU seconds (:data:`CLOCK`)."""
    start, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    elapsed, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({proc.returncode}) in {cwd}:\n{proc.stdout}{proc.stderr}")
    return cpu if CLOCK == "cpu" else elapsed


def write_cog(root: Path, number: int, extra: str = "") -> None:
    text = COG_MODULE.format(number=number, extra=extra)
    (root / "benchbot" / "cogs" / f"cog{number}.py").write_text(text, encoding="utf-8")


def generate(root: Path, cogs: int) -> dict[str, str]:
    """Write the bot and the Alembic scripts folder (no revisions yet); return the environment."""
    package = root / "benchbot"
    (package / "cogs").mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "cogs" / "__init__.py").write_text("", encoding="utf-8")
    (package / "db.py").write_text(DB_MODULE, encoding="utf-8")
    (package / "main.py").write_text(MAIN_MODULE.format(cogs=cogs), encoding="utf-8")
    for number in range(cogs):
        write_cog(root, number)
    (root / "nxalembic.ini").write_text("[nxalembic]\nmodule = benchbot.main\nbot = bot\n", encoding="utf-8")
    env = {**os.environ, URL_VARIABLE: f"sqlite+aiosqlite:///{root / 'bench.db'}"}
    env.pop("PYTHONSAFEPATH", None)  # the floor imports the bot from the working directory
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as deployed: bot, env.py and revisions cached as .pyc
    run([ALEMBIC, "init", "-t", "nxcog", "migrations"], root, env)
    return env


def fresh_database(root: Path) -> None:
    (root / "bench.db").unlink(missing_ok=True)


def revision_files(root: Path) -> list[Path]:
    return sorted((root / "migrations" / "versions").glob("*/*.py"))


def measure(root: Path, cogs: int, runs: int, env: dict[str, str]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    nx = [NXALEMBIC, "-q"]
    for _ in range(runs):
        times["floor"].append(
            run([PYTHON, "-c", "import benchbot.main, alembic.command, alembic.config"], root, env)
        )
        # first migrate: no revision files, empty database
        shutil.rmtree(root / "migrations" / "versions", ignore_errors=True)
        (root / "migrations" / "versions").mkdir()
        fresh_database(root)
        times["first migrate"].append(run([*nx, "migrate", "-m", "create table"], root, env))
        if len(revision_files(root)) != cogs:
            sys.exit(f"first migrate wrote {len(revision_files(root))} files for {cogs} cogs")
        fresh_database(root)
        times["upgrade (empty)"].append(run([*nx, "upgrade"], root, env))
        times["upgrade (head)"].append(run([*nx, "upgrade"], root, env))
        times["status"].append(run([*nx, "status"], root, env))
        times["check"].append(run([*nx, "check"], root, env))
        before = set(revision_files(root))
        write_cog(root, 0, CHANGE)
        try:
            times["migrate (1 change)"].append(run([*nx, "migrate", "-m", "add score"], root, env))
            written = set(revision_files(root)) - before
            if len(written) != 1:
                sys.exit(f"migrate with one model change wrote {len(written)} files")
        finally:
            for path in set(revision_files(root)) - before:
                path.unlink()
            write_cog(root, 0)
        times["stock current"].append(run([ALEMBIC, "-x", "cog=cog0", "current"], root, env))
    return times


def generate_nx033(root: Path, cogs: int) -> dict[str, str]:
    package = root / "benchbot033"
    (package / "cogs").mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "cogs" / "__init__.py").write_text("", encoding="utf-8")
    variable = "BENCHBOT033_DATABASE_URL"
    (package / "main.py").write_text(NX033_MAIN.format(cogs=cogs, variable=variable), encoding="utf-8")
    for number in range(cogs):
        # a package per cog: NXAlembic 0.3.3 keeps a cog's revisions in <its module's folder>/migrations
        (package / "cogs" / f"cog{number}").mkdir()
        (package / "cogs" / f"cog{number}" / "__init__.py").write_text(
            NX033_COG.format(number=number), encoding="utf-8"
        )
    (root / "nxalembic.ini").write_text(
        "[nxalembic]\nmodule = benchbot033.main\nbot = bot\n", encoding="utf-8"
    )
    env = {**os.environ, variable: f"sqlite:///{root / 'bench033.db'}", "PYTHONPATH": "."}
    env.pop("PYTHONSAFEPATH", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("VIRTUAL_ENV", None)
    return env


def measure_nx033(python: str, cogs: int, runs: int) -> list[float]:
    """NXAlembic 0.3.3's ``nxalembic upgrade`` from an empty database, on the same bot in its API."""
    nxalembic = str(Path(python).parent / "nxalembic")
    root = Path(tempfile.mkdtemp(prefix="nxalembic033-bench-"))
    try:
        env = generate_nx033(root, cogs)
        run([nxalembic, "migrate", "-m", "create table"], root, env)
        times = []
        for _ in range(runs):
            (root / "bench033.db").unlink(missing_ok=True)
            times.append(run([nxalembic, "upgrade"], root, env))
        return times
    finally:
        shutil.rmtree(root, ignore_errors=True)


def print_tables(
    medians: dict[int, dict[str, float]],
    nx033: float | None,
    nx033_cogs: int,
    out: Callable[[str], None] = print,
) -> None:
    counts = sorted(medians)
    out("")
    out("| cogs | " + " | ".join(COMMANDS) + " |")
    out("|---" * (len(COMMANDS) + 1) + "|")
    for cogs in counts:
        floor = medians[cogs]["floor"]
        cells = [f"{floor:.2f} s"] + [
            f"{medians[cogs][name]:.2f} s ({medians[cogs][name] / floor:.2f}×)" for name in COMMANDS[1:]
        ]
        out(f"| {cogs} | " + " | ".join(cells) + " |")
    if len(counts) > 1:
        base = counts[0]
        out("")
        out(f"Cost above the floor per cog, in ms, and its ratio to that at {base} cogs:")
        out("")
        out("| cogs | " + " | ".join(GROWTH) + " |")
        out("|---" * (len(GROWTH) + 1) + "|")
        for cogs in counts:
            cells = []
            for name in GROWTH:
                per_cog = (medians[cogs][name] - medians[cogs]["floor"]) / cogs
                first = (medians[base][name] - medians[base]["floor"]) / base
                cells.append(
                    f"{per_cog * 1000:.1f} ({per_cog / first:.2f}×)" if first > 0 else f"{per_cog * 1000:.1f}"
                )
            out(f"| {cogs} | " + " | ".join(cells) + " |")
        low, high = counts[0], counts[-1]
        growth = (medians[high]["stock current"] - medians[high]["floor"]) - (
            medians[low]["stock current"] - medians[low]["floor"]
        )
        out("")
        out(
            f"alembic -x cog=cog0 current above the floor: {low} cogs "
            f"{medians[low]['stock current'] - medians[low]['floor']:+.3f} s, {high} cogs "
            f"{medians[high]['stock current'] - medians[high]['floor']:+.3f} s (difference {growth:+.3f} s)"
        )
    if nx033 is not None:
        out("")
        ours = medians.get(nx033_cogs)
        line = f"NXAlembic 0.3.3 nxalembic upgrade of {nx033_cogs} cogs from empty: {nx033:.2f} s"
        if ours is not None:
            line += (
                f"; ours {ours['upgrade (empty)']:.2f} s = {ours['upgrade (empty)'] / nx033:.2f}× "
                "NXAlembic 0.3.3,"
                f" {ours['upgrade (empty)'] / ours['floor']:.2f}× our floor"
            )
        out(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cogs", default="10,50", help="comma-separated cog counts (default: 10,50)")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement; the median is shown")
    parser.add_argument(
        "--nxalembic033",
        default=str(DEFAULT_NX033) if DEFAULT_NX033.exists() else None,
        help="python of a venv with nextcord-ormar==0.3.3 (default: .venv-nxalembic033)",
    )
    parser.add_argument("--nxalembic033-cogs", type=int, default=50)
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: seconds elapsed (default); cpu: user + system CPU seconds of each process",
    )
    options = parser.parse_args()
    global CLOCK
    CLOCK = options.clock
    counts = sorted({int(n) for n in options.cogs.split(",") if n.strip()})

    print(
        f"machine: {os.cpu_count()} CPUs, {cpu_model()}, Python {platform.python_version()}; "
        f"runs: {options.runs}; clock: {CLOCK}; load average at start: {load_average()}",
        flush=True,
    )
    medians: dict[int, dict[str, float]] = {}
    nx033: float | None = None
    for cogs in counts:
        root = Path(tempfile.mkdtemp(prefix="nxalembic-bench-scale-"))
        try:
            env = generate(root, cogs)
            times = measure(root, cogs, options.runs, env)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        medians[cogs] = {name: statistics.median(values) for name, values in times.items()}
        print(
            f"{cogs} cogs: "
            + ", ".join(f"{name} {medians[cogs][name]:.2f} s" for name in COMMANDS)
            + f" (load {load_average()})",
            flush=True,
        )
        if cogs == options.nxalembic033_cogs and options.nxalembic033:
            nx033 = statistics.median(measure_nx033(options.nxalembic033, cogs, options.runs))
            print(f"{cogs} cogs: NXAlembic 0.3.3 upgrade {nx033:.2f} s (load {load_average()})", flush=True)
    if options.nxalembic033 and nx033 is None:
        nx033 = statistics.median(
            measure_nx033(options.nxalembic033, options.nxalembic033_cogs, options.runs)
        )
    print_tables(medians, nx033, options.nxalembic033_cogs)
    print(f"\nload average at the end: {load_average()}")


if __name__ == "__main__":
    main()
