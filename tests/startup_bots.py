"""Bot processes as they are deployed, for the many-processes and crash tests.

A *starter* is one real process on a copy of the example bot that migrates the database the
way a deployed bot does, either

* ``api``: it imports the bot, then calls ``nxalembic_templates.upgrade(bot)`` inside its own
  running event loop (the start-up API), and prints what it did as one JSON line; or
* ``cli``: the deploy step ``nxalembic upgrade`` (the process execs the real executable).

Every starter can wait at a *barrier* first: it announces itself with a ``ready-PID`` file and
then blocks reading its stdin until the test closes it, so that many starters begin
migrating at the same moment without the test sleeping.  Output goes to a file per process
(never a pipe that could fill up and block it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from conftest import NXALEMBIC, BotProject, Spawned, create_table_op

T = TypeVar("T")

#: How long any one step of a test's choreography may take before the test gives up.
STEP_TIMEOUT = 120.0

#: What the starter process runs (argv[1]: api or cli).
STARTER = '''
"""A deployed bot starting: wait at the barrier (if any), then migrate."""
import asyncio, json, os, sys
from pathlib import Path

mode = sys.argv[1]
if mode == "api":
    import logging
    import nxalembic_templates
    from demobot.main import bot
    # the lock-wait report and one line per cog, where the test can read them
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")

barrier = os.environ.get("STARTUP_BARRIER")
if barrier:
    (Path(barrier) / f"ready-{os.getpid()}").touch()
    sys.stdin.read()  # until the test releases every starter at once

if mode == "cli":
    os.execv(sys.argv[2], [sys.argv[2], "upgrade"])


async def main() -> None:
    results = await nxalembic_templates.upgrade(bot)
    print(json.dumps({r.cog: {"applied": list(r.applied), "now": list(r.now)} for r in results}), flush=True)


asyncio.run(main())
'''


create_table = create_table_op


class Starter(Spawned):
    """One starting bot process."""

    def report(self) -> dict[str, Any]:
        """What an ``api`` starter's upgrade() returned (its one JSON line)."""
        [line] = [line for line in self.output().splitlines() if line.startswith("{")]
        return json.loads(line)

    def last_line(self) -> str:
        lines = [line for line in self.output().splitlines() if line.strip()]
        return lines[-1] if lines else ""


def start(
    project: BotProject,
    mode: str,
    folder: Path,
    name: str,
    env: dict[str, str] | None = None,
    barrier: bool = False,
) -> Starter:
    """Start one starter (``api`` or ``cli``) in the project; stdout and stderr go to ``folder/name.log``."""
    script = project.path / "starter.py"
    if not script.exists():
        script.write_text(STARTER)
    out = folder / f"{name}.log"
    extra = {"STARTUP_BARRIER": str(folder)} if barrier else {}
    with out.open("w") as handle:
        process = subprocess.Popen(
            [sys.executable, str(script), mode, NXALEMBIC],
            cwd=project.path,
            env={**os.environ, **project.env, **extra, **(env or {})},
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE if barrier else subprocess.DEVNULL,
        )
    return Starter(process, out)


def wait_for(
    condition: Callable[[], T | None], what: str, starters: list[Starter], may_end: bool = False
) -> T:
    """Poll *condition* until it returns something; give up at once when a starter ends (unless *may_end*)."""
    deadline = time.monotonic() + STEP_TIMEOUT
    while (result := condition()) is None:
        ended = [s for s in starters if s.process.poll() is not None]
        assert (may_end or not ended) and time.monotonic() < deadline, (
            f"gave up waiting for {what}\n"
            + "\n".join(f"--- process {s.pid} (exit {s.process.poll()}) ---\n{s.output()}" for s in starters)
        )
        time.sleep(0.05)
    return result


def stop(starters: list[Starter]) -> None:
    """Kill what is still running (after a failed assertion) and reap everything."""
    for starter in starters:
        if starter.process.poll() is None:
            starter.process.kill()
        starter.process.wait()
        if starter.process.stdin:
            starter.process.stdin.close()
