"""Benchmark: ``nxalembic upgrade`` (one process) against one stock ``alembic`` process per cog.

Generates a bot with ``--cogs`` single-file extensions (default 50), each owning one ormar
model, and three revisions per cog written by ``nxalembic migrate`` (create table, add a
column, add an index).  Then, for each of ``--runs`` rounds, two fresh SQLite databases are
brought to head side by side:

(a) ``nxalembic upgrade``: the bot is imported once and every cog runs in one process;
(b) ``alembic -x cog=cogNN upgrade head`` for every cog, one process after the other, which
    is what a deployment script without ``nxalembic`` does.

Both databases are checked to end up with the same tables and version rows, then the
medians and their ratio are printed.  Run it with ``make bench`` (it uses the test venv).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # machine.py, also under python -P
from machine import cpu_model

BIN = Path(sys.executable).parent
ALEMBIC = str(BIN / "alembic")
NXALEMBIC = str(BIN / "nxalembic")
URL_VARIABLE = "BENCHBOT_DATABASE_URL"

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
    bot.load_extension(f"benchbot.cogs.cog{{number:02d}}")
"""

#: The model of one cog at each of the three stages; every stage is one revision.
STAGES = (
    "    name: str = ormar.String(max_length=100)\n",
    "    name: str = ormar.String(max_length=100)\n    score: int = ormar.Integer(default=0)\n",
    "    name: str = ormar.String(max_length=100, index=True)\n    score: int = ormar.Integer(default=0)\n",
)
MESSAGES = ("create table", "add column", "add index")

COG_MODULE = """\
import ormar
from nextcord.ext import commands

from ..db import base_config


class Item{number:02d}(ormar.Model):
    ormar_config = base_config.copy(tablename="cog{number:02d}_items")

    id: int = ormar.Integer(primary_key=True)
{fields}

class Cog{number:02d}(commands.Cog):
    pass


def setup(bot: commands.Bot) -> None:
    bot.add_cog(Cog{number:02d}())
"""


def run(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")


def write_cogs(root: Path, cogs: int, stage: int) -> None:
    for number in range(cogs):
        text = COG_MODULE.format(number=number, fields=STAGES[stage])
        (root / "benchbot" / "cogs" / f"cog{number:02d}.py").write_text(text, encoding="utf-8")


def generate(root: Path, cogs: int) -> dict[str, str]:
    """Write the bot and its revisions; return the environment the commands run with."""
    package = root / "benchbot"
    (package / "cogs").mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "cogs" / "__init__.py").write_text("", encoding="utf-8")
    (package / "db.py").write_text(DB_MODULE, encoding="utf-8")
    (package / "main.py").write_text(MAIN_MODULE.format(cogs=cogs), encoding="utf-8")
    (root / "nxalembic.ini").write_text("[nxalembic]\nmodule = benchbot.main\nbot = bot\n", encoding="utf-8")
    env = {**os.environ, URL_VARIABLE: f"sqlite+aiosqlite:///{root / 'scratch.db'}"}
    run([ALEMBIC, "init", "-t", "nxcog", "migrations"], root, env)
    for stage, message in enumerate(MESSAGES):
        write_cogs(root, cogs, stage)
        run([NXALEMBIC, "-q", "migrate", "-m", message], root, env)
    written = len(list((root / "migrations" / "versions").glob("*/*.py")))
    if written != cogs * len(MESSAGES):
        sys.exit(f"expected {cogs * len(MESSAGES)} revision files, found {written}")
    return env


def fresh_database(root: Path, name: str, env: dict[str, str]) -> tuple[Path, dict[str, str]]:
    path = root / name
    path.unlink(missing_ok=True)
    return path, {**env, URL_VARIABLE: f"sqlite+aiosqlite:///{path}"}


def time_nxalembic(root: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    run([NXALEMBIC, "-q", "upgrade"], root, env)
    return time.perf_counter() - start


def time_stock(root: Path, env: dict[str, str], cogs: int) -> float:
    start = time.perf_counter()
    for number in range(cogs):
        run([ALEMBIC, "-x", f"cog=cog{number:02d}", "upgrade", "head"], root, env)
    return time.perf_counter() - start


def contents(path: Path) -> dict[str, object]:
    """Every table's SQL and every version row: what both routes must agree on."""
    with sqlite3.connect(path) as conn:
        schema = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL"))
        versions = {
            name: sorted(r[0] for r in conn.execute(f'SELECT version_num FROM "{name}"'))
            for name in schema
            if name.startswith("alembic_version_")
        }
    return {"schema": schema, "versions": versions}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cogs", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="nxalembic-bench-"))
    try:
        start = time.perf_counter()
        env = generate(root, options.cogs)
        print(
            f"generated {options.cogs} cogs x {len(MESSAGES)} revisions with nxalembic migrate "
            f"in {time.perf_counter() - start:.1f} s",
            flush=True,
        )
        ours: list[float] = []
        stock: list[float] = []
        for number in range(options.runs):
            a, env_a = fresh_database(root, "nxalembic.db", env)
            b, env_b = fresh_database(root, "stock.db", env)
            # alternate which side goes first, so neither always gets the warmer caches
            if number % 2:
                stock.append(time_stock(root, env_b, options.cogs))
                ours.append(time_nxalembic(root, env_a))
            else:
                ours.append(time_nxalembic(root, env_a))
                stock.append(time_stock(root, env_b, options.cogs))
            if contents(a) != contents(b):
                sys.exit("the two routes produced different databases")
            print(
                f"run {number + 1}: nxalembic upgrade {ours[-1]:.2f} s, "
                f"{options.cogs} x alembic upgrade head {stock[-1]:.2f} s",
                flush=True,
            )
        ours_median, stock_median = statistics.median(ours), statistics.median(stock)
        print(f"cogs: {options.cogs}, revisions per cog: {len(MESSAGES)}, runs: {options.runs}")
        print(f"machine: {os.cpu_count()} CPUs, {cpu_model()}, Python {platform.python_version()}")
        print(f"median nxalembic upgrade:            {ours_median:.2f} s")
        print(f"median {options.cogs} x alembic upgrade head: {stock_median:.2f} s")
        print(f"ratio: {stock_median / ours_median:.1f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
