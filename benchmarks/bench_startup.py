"""Benchmark: start-up overhead of ``alembic -x cog=NAME current`` through the nxcog env.py.

What a per-cog command costs on top of what cannot be avoided: Python has to import the bot
(nextcord, ormar, the models) and Alembic has to start, read its config and ask the database.
So, whole processes, as a user runs them, against one SQLite database at head:

* **ours**: ``alembic -x cog=economy current`` in the example bot's nxcog environment, with
  the database URL the bot's ormar models use (``sqlite+aiosqlite``); also printed with
  ``-x url=sqlite:///...``, the synchronous driver the stock side uses;
* **bot import**: ``python -c "import demobot.main"``;
* **stock**: ``alembic current`` in an unmodified ``alembic init -t generic`` environment whose
  ``sqlalchemy.url`` points at the same database.

The three commands take turns, ``--runs`` times (default 10).  Target: the median of ours
within 1.3x of the median bot import plus the median stock ``current``.  Run with
``make bench`` or ``.venv/bin/python -P`` on this file.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # machine.py, also under python -P
from machine import cpu_model

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ALEMBIC = str(BIN / "alembic")
NXALEMBIC = str(BIN / "nxalembic")
PYTHON = str(BIN / "python")
COG = "economy"
PLACEHOLDER = "driver://user:pass@localhost/dbname"
TARGET = 1.3


def run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout + proc.stderr


def timed(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    run(args, cwd, env)
    return time.perf_counter() - start


def setup(root: Path) -> tuple[dict[str, str], Path, Path]:
    """The example bot migrated to head; returns its environment, its database and the stock ini."""
    shutil.copytree(
        REPO / "examples" / "demobot", root / "demobot", ignore=shutil.ignore_patterns("__pycache__", "*.db")
    )
    shutil.copy(REPO / "examples" / "nxalembic.ini", root / "nxalembic.ini")
    database = root / "bot.db"
    env = {**os.environ, "DEMOBOT_DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    run([ALEMBIC, "init", "-t", "nxcog", "migrations"], root, env)
    run([NXALEMBIC, "-q", "migrate", "-m", "init"], root, env)
    run([NXALEMBIC, "-q", "upgrade"], root, env)

    stock = root / "stock"
    stock.mkdir()
    run([ALEMBIC, "init", "-t", "generic", "scripts"], stock, env)
    ini = stock / "alembic.ini"
    text = ini.read_text()
    if PLACEHOLDER not in text:
        sys.exit("Alembic's generic alembic.ini changed: no placeholder sqlalchemy.url")
    ini.write_text(text.replace(PLACEHOLDER, f"sqlite:///{database}"))
    return env, database, ini


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs of each command (default 10)")
    options = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="nxalembic-bench-startup-"))
    try:
        env, database, stock_ini = setup(root)
        commands = {
            "ours": [ALEMBIC, "-x", f"cog={COG}", "current"],
            "ours, sync driver": [ALEMBIC, "-x", f"cog={COG}", "-x", f"url=sqlite:///{database}", "current"],
            "bot import": [PYTHON, "-c", "import demobot.main"],
            "stock current": [ALEMBIC, "-c", str(stock_ini), "current"],
        }
        if "(head)" not in run(commands["ours"], root, env):
            sys.exit("ours: 'current' does not report the cog at head")
        times: dict[str, list[float]] = {name: [] for name in commands}
        names = list(commands)
        for number in range(options.runs):
            # rotate the order, so no command always runs first (or right after another)
            for name in names[number % len(names) :] + names[: number % len(names)]:
                times[name].append(timed(commands[name], root, env))
        median = {name: statistics.median(values) for name, values in times.items()}
        baseline = median["bot import"] + median["stock current"]

        print(
            f"machine: {os.cpu_count()} CPUs, {cpu_model()}, Python {platform.python_version()}, "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        print(f"whole processes, median of {options.runs} runs each (seconds):")
        print(f"  alembic -x cog={COG} current (ours, bot's aiosqlite URL): {median['ours']:.3f}")
        print(
            f"  alembic -x cog={COG} current (ours, -x url=sqlite:///):   {median['ours, sync driver']:.3f}"
        )
        print(f"  python -c 'import demobot.main':                        {median['bot import']:.3f}")
        print(f"  alembic current (stock generic env, sqlite:///):        {median['stock current']:.3f}")
        print(f"  bot import + stock current:                             {baseline:.3f}")
        for name in ("ours", "ours, sync driver"):
            ratio = median[name] / baseline
            verdict = "met" if ratio <= TARGET else "MISSED"
            print(
                f"ratio {name} / (bot import + stock current): {ratio:.2f}x (target <= {TARGET}x: {verdict})"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
