"""End-to-end demo on SQLite: ``make demo`` runs this (``make demo LIB=discordpy``: ``demo.py discordpy``).

It copies the example bot into a temporary folder and runs the documented workflow with the
real ``alembic`` and ``nxalembic`` executables, printing every step and the resulting tables
and version tables.  Last, the bot migrates itself: ``python -m demobot.main`` is the bot's
real start-up path (``prepare()``, then connect), and without ``DISCORD_TOKEN`` it stops
before connecting to Discord, so the demo needs no token and no network.

``discordpy``: the same for the discord.py bot of ``examples/discordpy_demo`` (``dpybot``),
whose settings are in ``pyproject.toml`` and which loads its extensions and migrates in
``setup_hook`` (docs/discordpy-pyproject.rst); the venv has discord.py and no nextcord.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def step(folder: Path, *args: str) -> None:
    print(f"\n$ {' '.join(args)}", flush=True)
    exe = str(BIN / args[0]) if (BIN / args[0]).exists() else args[0]
    # stderr (the database line, notes, Alembic's log) interleaved with stdout, as at a terminal
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}  # the bot must never connect here
    proc = subprocess.run(
        [exe, *args[1:]], cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    for line in proc.stdout.splitlines():
        if not line.startswith("INFO  [alembic.runtime.plugins]"):
            print(f"  {line}")
    if proc.returncode != 0:
        sys.exit(f"demo step failed with exit code {proc.returncode}")


def show_database(db: Path) -> None:
    print(f"\nTables in {db.name}:")
    with sqlite3.connect(db) as conn:
        names = [
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
        ]
        for name in names:
            if name.startswith("alembic_version_"):
                rows = [r[0] for r in conn.execute(f'SELECT version_num FROM "{name}"')]
                print(f"  {name:28} version table -> {', '.join(rows) or '(empty)'}")
            else:
                cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{name}")')]
                print(f"  {name:28} ({', '.join(cols)})")


def start_twice(folder: Path, bot: str, start_up: str) -> None:
    """The bot's own start-up (``python -m BOT.main``, no token), a restart, then the database and files."""
    print(f"\n# no DISCORD_TOKEN: the bot runs {start_up}, then stops")
    step(folder, "python", "-m", f"{bot}.main")
    print("\n# a restart: every cog is at its head, one read of the version tables and nothing else")
    step(folder, "python", "-m", f"{bot}.main")
    show_database(folder / f"{bot}.db")
    print("\nRevision folders:")
    for path in sorted((folder / "migrations" / "versions").rglob("*.py")):
        print(f"  {path.relative_to(folder)}")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="nxalembic-demo-") as tmp:
        folder = Path(tmp)
        shutil.copytree(
            HERE / "demobot", folder / "demobot", ignore=shutil.ignore_patterns("__pycache__", "*.db")
        )
        shutil.copy(HERE / "nxalembic.ini", folder / "nxalembic.ini")
        print(f"Example bot copied to {folder} (cogs: music, economy, fun; core models outside extensions)")

        step(folder, "alembic", "list_templates")
        step(folder, "alembic", "init", "-t", "nxcog", "migrations")
        print("\n--- the stock route: one cog at a time with -x cog=NAME ---")
        step(folder, "alembic", "-x", "cog=core", "revision", "--autogenerate", "-m", "create users")
        step(folder, "alembic", "-x", "cog=core", "upgrade", "head")
        step(folder, "alembic", "-x", "cog=music", "revision", "--autogenerate", "-m", "create songs")
        step(folder, "alembic", "-x", "cog=music", "upgrade", "head")
        step(folder, "alembic", "-x", "cog=music", "revision", "--autogenerate", "-m", "nothing new")
        step(folder, "alembic", "-x", "cog=music", "current")
        print("\n--- the nxalembic command: every remaining cog at once ---")
        step(folder, "nxalembic", "migrate")
        step(folder, "nxalembic", "upgrade")
        step(folder, "nxalembic", "status")
        step(folder, "nxalembic", "check")
        print("\n--- one cog down and up again; the others are not touched ---")
        step(folder, "alembic", "-x", "cog=economy", "downgrade", "base")
        show_database(folder / "demobot.db")
        step(folder, "nxalembic", "upgrade")
        show_database(folder / "demobot.db")
        print("\n--- the bot migrates itself at start-up (a release with economy's revision) ---")
        step(folder, "alembic", "-x", "cog=economy", "downgrade", "base")
        start_twice(folder, "demobot", "its start-up (prepare: migrate every cog)")


def discordpy() -> None:
    with tempfile.TemporaryDirectory(prefix="nxalembic-demo-discordpy-") as tmp:
        folder = Path(tmp)
        source = HERE / "discordpy_demo"
        shutil.copytree(source / "dpybot", folder / "dpybot", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(source / "pyproject.toml", folder / "pyproject.toml")
        print(f"Example discord.py bot copied to {folder} (cogs: notes, reminders, fun); pyproject.toml:")
        for line in (folder / "pyproject.toml").read_text().splitlines():
            print(f"  {line}")

        print("\n--- [tool.alembic] and migrations/ next to the [tool.nxalembic] the project has ---")
        step(folder, "nxalembic", "init", "--pyproject")
        print("\n--- every cog at once; the extensions setting loads what setup_hook would ---")
        step(folder, "nxalembic", "migrate")
        step(folder, "nxalembic", "upgrade")
        step(folder, "nxalembic", "status")
        step(folder, "nxalembic", "check")
        show_database(folder / "dpybot.db")
        print("\n--- the bot migrates itself in setup_hook (a release with reminders' revision) ---")
        step(folder, "nxalembic", "downgrade", "reminders", "base")
        start_twice(folder, "dpybot", "setup_hook (load the extensions, migrate)")


if __name__ == "__main__":
    if sys.argv[1:] == ["discordpy"]:
        discordpy()
    else:
        main()
