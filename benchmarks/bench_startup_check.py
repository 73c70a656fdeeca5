"""Benchmark: the start-up check of a 50-cog bot at head, against the bot's own import (issue 13).

A bot that migrates itself calls ``upgrade_sync(bot)`` (or ``await upgrade(bot)``) on every
start; with every cog at its head that call should cost next to nothing.  Target: at most 5%
of the time the bot takes to import (nextcord, ormar, its 50 cogs).

The bot is ``bench_scale.py``'s generated bot (``--cogs`` single-file extensions, one ormar
model each, ``sqlite+aiosqlite``), migrated to head once by ``nxalembic migrate`` and
``nxalembic upgrade``.  Then each of ``--runs`` fresh processes measures, in that one process:

* **import**: ``import benchbot.main`` (builds the bot, loads its extensions);
* **code import**: ``import nxalembic_templates.startup``: the package's start-up code (which
  does not import Alembic: at head, the fast path of :mod:`nxalembic_templates.headcheck`
  decides without it; the benchmark prints whether Alembic got imported all the same);
* **first check**: the first ``upgrade_sync(bot)`` (default mode, nothing to do);
* **later checks**: ``--repeat`` more calls in the same process.

The bot's import leaves CPython's garbage collector with a full (oldest-generation) collection
due: whatever code runs next and allocates a few hundred objects sets it off, and it costs
in proportion to the bot's own objects (about 0.05 s for this bot).  It is the bot's cost,
so the headline ratio counts a ``gc.collect()`` right after the import in the bot's import;
processes that leave it to the start-up check to set off are measured too (interleaved)
and that ratio is printed beside it.

Printed: the medians over the processes, on the wall clock and on the process's CPU clock
(all threads; less disturbed by other work on a shared machine), and the ratio of the
start-up check (code import + first check: what a start pays) to the bot's import.  Bytecode caching
stays on (``PYTHONDONTWRITEBYTECODE`` unset), as in a deployed bot; one untimed process warms
the caches first.  ``--profile`` prints the top of a cProfile of one first check.
Run with ``make bench`` or ``.venv/bin/python -P benchmarks/bench_startup_check.py``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_scale, also under python -P

import bench_scale

TARGET = 0.05

MEASURE = """\
import gc
import json
import sys
import time

def clocks():
    return time.perf_counter(), time.process_time()  # wall; CPU of every thread of this process


def since(start):
    now = clocks()
    return [now[0] - start[0], now[1] - start[1]]


start = clocks()
import benchbot.main
imported = since(start)
start = clocks()
if {collect}:
    gc.collect()  # the full collection the bot's import made due (see the module docstring)
collected = since(start)

start = clocks()
import nxalembic_templates.startup  # the start-up code (Alembic only when a cog is behind)
code = since(start)

checks = []
for _ in range(1 + {repeat}):
    start = clocks()
    results = nxalembic_templates.upgrade_sync(benchbot.main.bot)
    checks.append(since(start))
    assert len(results) == {cogs} and not any(r.applied for r in results), results
print(json.dumps({{"import": imported, "collect": collected, "code": code, "checks": checks,
                  "alembic": "alembic" in sys.modules}}))
"""

PROFILE = """\
import cProfile
import pstats

import benchbot.main
from nxalembic_templates import startup
from nxalembic_templates.locking import LockPolicy
from nxalembic_templates.settings import load_settings, settings_for

# upgrade_sync's work runs in a worker thread, which cProfile does not see: profile that work
# (startup._run) in this thread instead, as the first check of the process
profile = cProfile.Profile()
profile.enable()
ini = startup.find_alembic_ini(benchbot.main.bot)
settings = load_settings(settings_for(ini))
startup._run(benchbot.main.bot, ini, settings, "apply", None, LockPolicy())
profile.disable()
pstats.Stats(profile).sort_stats("cumulative").print_stats({top})
"""


def child(root: Path, env: dict[str, str], code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        sys.exit(f"the measuring process failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cogs", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5, help="measuring processes (default 5)")
    parser.add_argument("--repeat", type=int, default=3, help="later checks per process (default 3)")
    parser.add_argument(
        "--profile",
        type=int,
        metavar="N",
        default=0,
        help="also print the top N functions of one first check, by cumulative time",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="nxalembic-bench-startup-") as folder:
        root = Path(folder)
        env = bench_scale.generate(root, args.cogs)
        bench_scale.run([bench_scale.NXALEMBIC, "-q", "migrate"], root, env)
        bench_scale.run([bench_scale.NXALEMBIC, "-q", "upgrade"], root, env)
        measure = {
            collect: MEASURE.format(repeat=args.repeat, cogs=args.cogs, collect=collect)
            for collect in (True, False)
        }
        child(root, env, measure[True])  # warm-up: bytecode caches of the bot, env.py and revisions
        runs: dict[bool, list[dict]] = {True: [], False: []}
        for _ in range(args.runs):  # interleaved, so both kinds see the same machine
            for collect in (True, False):
                runs[collect].append(json.loads(child(root, env, measure[collect]).strip().splitlines()[-1]))
        samples = runs[True]
        profile = child(root, env, PROFILE.format(top=args.profile)) if args.profile else ""

    print(
        f"start-up check of a {args.cogs}-cog bot at head, sqlite+aiosqlite, median of {args.runs} processes "
        f"(Python {platform.python_version()}, {bench_scale.cpu_model()}, load {bench_scale.load_average()})"
    )
    imported_alembic = sum(s["alembic"] for kind in runs.values() for s in kind)
    print(f"  Alembic imported by the check in {imported_alembic} of {2 * args.runs} processes")
    for clock, index in (("wall", 0), ("cpu", 1)):
        imported = statistics.median(s["import"][index] + s["collect"][index] for s in samples)
        collect = statistics.median(s["collect"][index] for s in samples)
        code = statistics.median(s["code"][index] for s in samples)
        first = statistics.median(s["checks"][0][index] for s in samples)
        later = (
            statistics.median(c[index] for s in samples for c in s["checks"][1:])
            if args.repeat
            else float("nan")
        )
        ratio = (code + first) / imported
        plain = [s for s in runs[False]]
        plain_ratio = statistics.median(
            (s["code"][index] + s["checks"][0][index]) / s["import"][index] for s in plain
        )
        print(
            f"  {clock} clock: bot import {imported:.3f} s (of which the collection it made due "
            f"{collect:.3f} s); importing nxalembic_templates.startup {code:.3f} s; "
            f"first upgrade_sync(bot) {first:.3f} s; later ones {later:.3f} s"
        )
        print(
            f"    start-up check (import + first call) / bot import: {ratio:.1%} (target <= {TARGET:.0%}: "
            f"{'met' if ratio <= TARGET else 'MISSED'}); first call alone: {first / imported:.1%}; "
            f"a later call: {later / imported:.1%}"
        )
        print(
            f"    without that collection (the check's code sets it off instead): {plain_ratio:.1%} "
            "(median over processes)"
        )
    if profile:
        print(profile)


if __name__ == "__main__":
    main()
