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
one revision per cog) is generated for ``--nxalembic033-cogs`` cogs (default 50; it must be
one of ``--cogs``) and its ``nxalembic upgrade`` from an empty database is timed in each run,
right after ours.  NXAlembic 0.3.3 installs in a Python 3.10 venv::

    ~/.pyenv/versions/3.10.13/bin/python -m venv .venv-nxalembic033
    .venv-nxalembic033/bin/pip install nextcord-ormar==0.3.3 aiosqlite

Every run times the floor and each command once, in turn; a ratio is the median over the
runs of each run's ratio (a command against the floor timed a moment before, ours against
NXAlembic 0.3.3 timed right after), so a machine that speeds up or slows down between runs
moves both sides of it.  The growth table gives the cost above the floor per cog at each N
(median of the runs), divided by that at the smallest N.  ``--unfrozen`` also times
``upgrade`` (empty, head) and ``check`` with the command's ``gc.freeze()`` turned off, to show
what that part of the saving is.  ``--clock cpu`` times each process's user + system CPU
seconds instead of the wall clock: on a machine shared with other work the wall clock of a
1-second process varies by a tenth of a second or more, which at 10 cogs is more than the
whole cost above the floor.  ``make bench`` runs it with the defaults (10 and 50 cogs, 3
runs); the issue's full measurement is ``--cogs 10,50,200,500 --runs 5``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # machine.py, also under python -P
from machine import cpu_model, load_average

BIN = Path(sys.executable).parent
PYTHON = sys.executable
ALEMBIC = str(BIN / "alembic")
NXALEMBIC = str(BIN / "nxalembic")
URL_VARIABLE = "BENCHBOT_DATABASE_URL"
#: The key of NXAlembic 0.3.3's upgrade from empty among the times of a run.
NX033 = "NXAlembic 0.3.3 upgrade (empty)"
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
#: The import floor of issue 12: what any command must pay to import the bot.
FLOOR = "import benchbot.main, alembic.command, alembic.config"
#: The same import, then ``gc.freeze()`` as the ``nxalembic`` command does: the floor under what
#: a command adds (the plain floor's exit walks every object of the bot once more).
FROZEN_FLOOR = "floor, frozen"

#: With ``--unfrozen``: these commands again, with the command's ``gc.freeze()`` turned off.
UNFROZEN = ("upgrade (empty)", "upgrade (head)", "check")
#: ``nxalembic`` with ``gc.freeze`` made a no-op (-P: no working directory on sys.path, as the
#: console script).
UNFROZEN_NXALEMBIC = [
    PYTHON,
    "-P",
    "-c",
    "import gc, sys; gc.freeze = lambda: None; from nxalembic_templates.cli import main; sys.exit(main())",
]

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


def measure(
    root: Path,
    cogs: int,
    runs: int,
    env: dict[str, str],
    nx033: Callable[[], float] | None = None,
    unfrozen: bool = False,
) -> dict[str, list[float]]:
    """Each command's time, run by run: every run times the floor and each command once, in turn.

    The ratios are taken within a run (a command against the floor measured a moment before),
    so a machine that speeds up or slows down between runs moves both sides.  *nx033*: also
    time NXAlembic 0.3.3's upgrade from empty in each run, right after ours.  *unfrozen*: also
    time :data:`UNFROZEN` with the command's ``gc.freeze()`` turned off.
    """
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    if nx033 is not None:
        times[NX033] = []
    nx = [NXALEMBIC, "-q"]
    plain = [*UNFROZEN_NXALEMBIC, "-q"]
    if unfrozen:
        times.update({f"{name}, unfrozen": [] for name in UNFROZEN})
    times[FROZEN_FLOOR] = []
    for _ in range(runs):
        times["floor"].append(run([PYTHON, "-c", FLOOR], root, env))
        times[FROZEN_FLOOR].append(run([PYTHON, "-c", f"{FLOOR}, gc; gc.freeze()"], root, env))
        # first migrate: no revision files, empty database
        shutil.rmtree(root / "migrations" / "versions", ignore_errors=True)
        (root / "migrations" / "versions").mkdir()
        fresh_database(root)
        times["first migrate"].append(run([*nx, "migrate", "-m", "create table"], root, env))
        if len(revision_files(root)) != cogs:
            sys.exit(f"first migrate wrote {len(revision_files(root))} files for {cogs} cogs")
        fresh_database(root)
        times["upgrade (empty)"].append(run([*nx, "upgrade"], root, env))
        if nx033 is not None:
            times[NX033].append(nx033())
        if unfrozen:
            fresh_database(root)
            times["upgrade (empty), unfrozen"].append(run([*plain, "upgrade"], root, env))
            times["upgrade (head), unfrozen"].append(run([*plain, "upgrade"], root, env))
            times["check, unfrozen"].append(run([*plain, "check"], root, env))
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


@contextlib.contextmanager
def nx033_upgrade(python: str, cogs: int) -> Iterator[Callable[[], float]]:
    """NXAlembic 0.3.3's ``nxalembic upgrade`` from an empty database, on the same bot in its API.

    The bot and its revisions are written once; each call of the function yielded times one
    upgrade of a fresh database.
    """
    nxalembic = str(Path(python).parent / "nxalembic")
    root = Path(tempfile.mkdtemp(prefix="nxalembic033-bench-"))
    try:
        env = generate_nx033(root, cogs)
        run([nxalembic, "migrate", "-m", "create table"], root, env)

        def upgrade() -> float:
            (root / "bench033.db").unlink(missing_ok=True)
            return run([nxalembic, "upgrade"], root, env)

        yield upgrade
    finally:
        shutil.rmtree(root, ignore_errors=True)


def paired(times: dict[str, list[float]], name: str, against: str = "floor") -> float:
    """The median, over runs, of *name* / *against* measured in the same run."""
    return statistics.median(a / b for a, b in zip(times[name], times[against], strict=True))


def above_floor(times: dict[str, list[float]], name: str, floor: str = "floor") -> float:
    """The median, over runs, of *name* minus *floor* measured in the same run (seconds)."""
    return statistics.median(a - b for a, b in zip(times[name], times[floor], strict=True))


def growth_table(
    results: dict[int, dict[str, list[float]]],
    names: Sequence[str],
    floor: str,
    out: Callable[[str], None],
) -> None:
    """Cost above *floor* per cog at each N, and its ratio to that at the smallest N."""
    counts = sorted(results)
    base = counts[0]
    out("")
    out(f"| cogs | {' | '.join(names)} |")
    out("|---" * (len(names) + 1) + "|")
    for cogs in counts:
        cells = []
        for name in names:
            per_cog = above_floor(results[cogs], name, floor) / cogs
            first = above_floor(results[base], name, floor) / base
            cells.append(
                f"{per_cog * 1000:.1f} ({per_cog / first:.2f}×)" if first > 0 else f"{per_cog * 1000:.1f}"
            )
        out(f"| {cogs} | " + " | ".join(cells) + " |")


def print_tables(results: dict[int, dict[str, list[float]]], out: Callable[[str], None] = print) -> None:
    counts = sorted(results)
    out("")
    out("Median seconds, and in brackets the median of each run's ratio to that run's floor:")
    out("")
    out("| cogs | " + " | ".join(COMMANDS) + " |")
    out("|---" * (len(COMMANDS) + 1) + "|")
    for cogs in counts:
        times = results[cogs]
        cells = [f"{statistics.median(times['floor']):.2f} s"] + [
            f"{statistics.median(times[name]):.2f} s ({paired(times, name):.2f}×)" for name in COMMANDS[1:]
        ]
        out(f"| {cogs} | " + " | ".join(cells) + " |")
    frozen = [
        f"{cogs} cogs {statistics.median(results[cogs][FROZEN_FLOOR]):.2f} s "
        f"({paired(results[cogs], FROZEN_FLOOR):.2f}× the floor)"
        for cogs in counts
    ]
    out("")
    out(f"Frozen floor (the import, then gc.freeze()): {'; '.join(frozen)}.")
    if len(counts) > 1:
        base = counts[0]
        out("")
        out(
            f"Cost above the floor per cog, in ms (median of the runs), and its ratio to that at {base} "
            "cogs; the floor here is the frozen one (the import, then gc.freeze() as the command does):"
        )
        growth_table(results, GROWTH, FROZEN_FLOOR, out)
        low, high = counts[0], counts[-1]
        at_low, at_high = (
            above_floor(results[low], "stock current"),
            above_floor(results[high], "stock current"),
        )
        out("")
        out(
            f"alembic -x cog=cog0 current above the floor: {low} cogs {at_low:+.3f} s, "
            f"{high} cogs {at_high:+.3f} s (difference {at_high - at_low:+.3f} s)"
        )
    if any(f"{UNFROZEN[0]}, unfrozen" in results[cogs] for cogs in counts):
        out("")
        out("The same commands with the command's gc.freeze() turned off (ratio to the floor):")
        out("")
        out("| cogs | " + " | ".join(f"{name}, unfrozen" for name in UNFROZEN) + " |")
        out("|---" * (len(UNFROZEN) + 1) + "|")
        for cogs in counts:
            times = results[cogs]
            keys = [f"{name}, unfrozen" for name in UNFROZEN]
            cells = [f"{statistics.median(times[key]):.2f} s ({paired(times, key):.2f}×)" for key in keys]
            out(f"| {cogs} | " + " | ".join(cells) + " |")
        if len(counts) > 1:
            out("")
            out(
                "Their cost above the (plain) floor per cog, in ms, and its ratio to that at the fewest cogs:"
            )
            growth_table(results, [f"{name}, unfrozen" for name in UNFROZEN], "floor", out)
    for cogs in counts:
        times = results[cogs]
        if NX033 in times:
            out("")
            out(
                f"NXAlembic 0.3.3 nxalembic upgrade of {cogs} cogs from empty: "
                f"{statistics.median(times[NX033]):.2f} s (median); ours "
                f"{statistics.median(times['upgrade (empty)']):.2f} s = "
                f"{paired(times, 'upgrade (empty)', NX033):.2f}× NXAlembic 0.3.3 (median of each run's "
                f"ratio), {paired(times, 'upgrade (empty)'):.2f}× our floor"
            )


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
        "--unfrozen",
        action="store_true",
        help="also time upgrade (empty, head) and check with the command's gc.freeze() turned off",
    )
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
    results: dict[int, dict[str, list[float]]] = {}
    for cogs in counts:
        root = Path(tempfile.mkdtemp(prefix="nxalembic-bench-scale-"))
        try:
            env = generate(root, cogs)
            with contextlib.ExitStack() as stack:
                nx033 = None
                if cogs == options.nxalembic033_cogs and options.nxalembic033:
                    nx033 = stack.enter_context(nx033_upgrade(options.nxalembic033, cogs))
                results[cogs] = measure(root, cogs, options.runs, env, nx033, options.unfrozen)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        medians = {name: statistics.median(values) for name, values in results[cogs].items()}
        print(
            f"{cogs} cogs: "
            + ", ".join(f"{name} {value:.2f} s" for name, value in medians.items())
            + f" (load {load_average()})",
            flush=True,
        )
    print_tables(results)
    print(f"\nload average at the end: {load_average()}")


if __name__ == "__main__":
    main()
