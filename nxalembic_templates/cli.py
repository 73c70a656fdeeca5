"""The ``nxalembic`` command: every cog at once, status and check, through ``runner.Project``.

Public: :func:`main` (the command in the caller's process) and :func:`script` (the console
script); ``parser`` is importable for the documentation (sphinx-argparse), the rest is internal.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn

from alembic import command
from alembic.config import Config
from alembic.util import CommandError

from . import PYPROJECT_TEMPLATE_DIR, TEMPLATE_DIR, __version__
from .compare import count, short
from .environment import INTERRUPTED
from .errors import NXAlembicError, described, file_line, first_line, hide_password, mask
from .locking import MAX_LOCK_TIMEOUT, LockPolicy
from .request import FALSE, PER_COG_KEYS, TRUE
from .runner import MigrationResult, Project
from .settings import CONFIG_FILE, PYPROJECT, TOML_TABLE, pyproject_for, read_pyproject, setting_line

__all__ = ["main", "script"]


def settings_skeleton(module: str, bot: str, toml: bool) -> str:
    """The settings ``nxalembic init`` writes: ``nxalembic.ini``, or (*toml*) ``[tool.nxalembic]``; the
    optional ones commented out, with their defaults (``extensions``: its package form and its list form)."""
    file, package = PYPROJECT if toml else CONFIG_FILE, ".".join([*module.split(".")[:-1], "cogs"])
    optional = [("url", "the URL of your ormar database"), ("version_table", "alembic_version_{cog}")]
    optional += [("version_location", "{script_location}/versions/{cog}"), ("core_cog", "core")]
    lines = [
        f"[{TOML_TABLE if toml else 'nxalembic'}]",
        f"# the module that creates your bot, and the variable that holds it: from {module} import {bot}",
        setting_line(file, "module", module),
        setting_line(file, "bot", bot),
        "# Optional (defaults shown):",
        *(f"# {setting_line(file, *setting)}" for setting in optional),
        "# The extensions a bot loads only when it starts (setup_hook, main()): their package, or a list",
        f"# {setting_line(file, 'extensions', package)}",
        f"# {setting_line(file, 'extensions', f'{package}.music', f'{package}.games')}",
    ]
    return "\n".join([*lines, ""])


#: The ``-x`` keys each command uses; any other key is refused, never silently ignored.
X_KEYS: dict[str, tuple[str, ...]] = {
    "upgrade": ("cog", "url"),
    "downgrade": ("cog", "url"),
    "migrate": ("cog", "url", "offline", "allow_drops", "rename", "scratch_url"),
    "status": ("url", "scratch_url"),
    "check": ("url", "scratch_url"),
    "init": (),
}
BOOLEAN_X_KEYS = ("offline", "allow_drops")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one ``FAILED:`` line like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"FAILED: {message}; see '{self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="nxalembic",
        description="Per-cog Alembic migrations for a discord bot: all cogs at once, status and check.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "-c",
        "--config",
        default=os.environ.get("ALEMBIC_CONFIG", "alembic.ini"),
        help="Alembic config file (default: alembic.ini, or $ALEMBIC_CONFIG)",
    )
    parser.add_argument(
        "-x",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="passed to env.py like alembic -x, e.g. -x url=sqlite:///other.db",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    parser.add_argument("--raiseerr", action="store_true", help="show the full traceback on errors")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sub = subs.add_parser("migrate", help="autogenerate the next revision of every cog (or one)")
    # --cog NAME; --app NAME is the same option, as Nextcord-Ormar's NXAlembic spelled it
    sub.add_argument("--cog", "--app", metavar="NAME", help="only this cog")
    sub.add_argument("--empty", action="store_true", help="write a blank revision instead of autogenerating")
    sub.add_argument("-m", "--message", help="revision message (default: derived from the operations)")
    sub.add_argument(
        "--offline",
        action="store_true",
        help="no database: replay each cog's revisions into a scratch SQLite database and compare with that",
    )
    sub.add_argument(
        "--allow-drops",
        action="store_true",
        help="drop tables this cog's revisions created whose models are gone (never other tables)",
    )
    sub.add_argument(
        "--rename",
        action="append",
        default=[],
        metavar="OLD:NEW",
        help="rename hint: old_table:new_table or table.old_column:new_column (repeatable)",
    )

    sub = subs.add_parser("upgrade", help="upgrade every cog to head (or one cog to REVISION)")
    sub.add_argument("--cog", "--app", metavar="NAME", help="only this cog")
    sub.add_argument("--sql", action="store_true", help="print the SQL instead of running it")
    sub.add_argument(
        "--lock-timeout",
        type=_seconds,
        metavar="SECONDS",
        help="give up (exit 1) when another process holds the migration lock for longer "
        "(default: wait; SQLite gives up after 300 s)",
    )
    sub.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")

    sub = subs.add_parser("downgrade", help="downgrade one cog (by one revision by default)")
    sub.add_argument("cog", metavar="COG", nargs="?", help="the cog to downgrade (or --cog NAME)")
    sub.add_argument("revision", nargs="?", help="target revision (default: -1, one step down)")
    sub.add_argument(
        "--cog", "--app", dest="cog_option", metavar="NAME", help="the cog to downgrade, instead of COG"
    )
    sub.add_argument("--sql", action="store_true", help="print the SQL instead of running it")

    sub = subs.add_parser("status", help="one row per cog: current, head, pending, model changes")
    sub.add_argument("--json", action="store_true", help="print the status as JSON")
    sub.add_argument(
        "--exit-code",
        action="store_true",
        help="exit 1 when any cog is behind its head or has models but no revisions (a readiness probe); "
        "changes nothing",
    )

    subs.add_parser("check", help="exit 1 when any cog has model changes without a revision")

    sub = subs.add_parser(
        "init",
        help="alembic init -t nxcog DIR (kept if it has an env.py), plus the settings it lacks: an "
        "nxalembic.ini skeleton (--pyproject: -t nxcog_pyproject and [tool.nxalembic] in pyproject.toml)",
    )
    sub.add_argument(
        "directory", nargs="?", default="migrations", help="scripts folder (default: migrations)"
    )
    sub.add_argument("--module", default="yourbot.main", help="bot module for the settings skeleton")
    sub.add_argument("--bot", default="bot", help="bot variable for the settings skeleton")
    sub.add_argument(
        "--pyproject",
        action="store_true",
        help="keep the settings in pyproject.toml ([tool.alembic], [tool.nxalembic]), appended to an "
        "existing one; alembic.ini keeps only the database URL and logging",
    )
    sub.add_argument(
        "--force",
        action="store_true",
        help="create the environment even below a folder that already has an alembic.ini",
    )
    hidden = argparse.SUPPRESS  # -q, --raiseerr and -x after the command too, keeping the values given before
    for sub in subs.choices.values():
        sub.add_argument("-q", "--quiet", action="store_true", default=hidden, help=hidden)
        sub.add_argument("--raiseerr", action="store_true", default=hidden, help=hidden)
        sub.add_argument("-x", action="append", dest="x_after", default=[], metavar="KEY=VALUE", help=hidden)
    return parser


def _seconds(text: str) -> float:
    """A ``--lock-timeout`` value: seconds that every database can wait (``locking.check_timeout``)."""
    try:
        return LockPolicy(float(text)).timeout  # type: ignore[return-value]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds from 0 to {MAX_LOCK_TIMEOUT}"
        ) from None


parser = build_parser()


def _progress(out: Callable[..., None], verb: str) -> Callable[[MigrationResult], None]:
    def report(result: MigrationResult) -> None:
        done = f"{count(len(result.steps), 'revision')} {verb}, now" if result.steps else "nothing to do,"
        out(f"{result.cog}: {done} at {short(result.now)}")

    return report


def _confirm_second_environment(args: argparse.Namespace) -> None:
    """Ask (at a terminal) or refuse before ``init`` makes an environment below another ``alembic.ini``."""
    folders = Path(args.config).resolve().parent.parents
    existing = next((f / "alembic.ini" for f in folders if (f / "alembic.ini").is_file()), None)
    if existing is None or args.force:
        return
    question = f"{existing} already exists: create a second Alembic environment below it?"
    if sys.stdin.isatty() and _ask(f"{question} [y/N] "):
        return
    raise NXAlembicError(
        f"{existing} already exists, so this would be a second Alembic environment inside that project; "
        f"use the existing one (nxalembic -c {existing} ...) or pass --force to create it anyway"
    )


def cmd_init(args: argparse.Namespace, out: Callable[..., None]) -> int:
    """``alembic init -t nxcog``, then the settings skeleton unless it exists; bad TOML stops it first.
    A scripts folder with an ``env.py`` (``alembic init`` run before) is kept: only the missing settings
    are written, to pyproject.toml when Alembic's are in its ``[tool.alembic]``."""
    _confirm_second_environment(args)
    pyproject, kept = pyproject_for(args.config), (Path(args.directory) / "env.py").is_file()
    data = read_pyproject(pyproject) if pyproject.exists() and (args.pyproject or kept) else {}
    toml = args.pyproject or (kept and "alembic" in data.get("tool", {}))
    if kept:
        out(f"{Path(args.directory).resolve()} has an Alembic environment already, left as it is")
    else:
        config = Config(args.config, toml_file=str(pyproject) if toml else None, cmd_opts=args)
        command.init(config, args.directory, template=str(PYPROJECT_TEMPLATE_DIR if toml else TEMPLATE_DIR))
    ini = pyproject.parent / CONFIG_FILE
    if ini.exists():
        left = f"and wins over [{TOML_TABLE}]: {pyproject} left without it" if toml else None
        out(f"{ini} exists {left}" if left else f"{ini} exists, left as it is")
    elif not toml:
        ini.write_text(settings_skeleton(args.module, args.bot, toml=False), encoding="utf-8")
        out(f"wrote {ini}: check 'module' and 'bot'")
    elif data.get("tool", {}).get("nxalembic") is not None:
        out(f"[{TOML_TABLE}] exists in {pyproject}, left as it is")
    else:
        text = pyproject.read_text(encoding="utf-8") if pyproject.exists() else ""  # kept: maybe none
        skeleton = "\n" + settings_skeleton(args.module, args.bot, toml=True)
        with pyproject.open("a", encoding="utf-8") as fh:
            fh.write(("" if text.endswith("\n") or not text else "\n") + skeleton)
        out(f"wrote [{TOML_TABLE}] to {pyproject}: check 'module' and 'bot'")
    return 0


def _downgrade_target(args: argparse.Namespace, cogs: Sequence[str] = ()) -> tuple[str, str]:
    """``downgrade COG [REV]``, ``--cog COG [REV]`` or ``-x cog=COG [REV]``; a second cog is a conflict."""
    cog, revision = args.cog, args.revision
    option = args.cog_option or getattr(args, "x_cog", None)
    if option:
        form = "--cog" if args.cog_option else "-x cog="
        if (cog is not None and revision is not None) or (cog in cogs and cog != option):
            raise NXAlembicError(
                f"downgrade takes the cog once, as COG or as {form}, not both ({cog}, {option}); "
                "give one of them"
            )
        cog, revision = option, cog if revision is None or cog == option else revision
    if cog is None:
        raise CommandError("downgrade needs a cog: nxalembic downgrade COG [REVISION]")
    return cog, revision or "-1"


def cmd_upgrade(project: Project, args: argparse.Namespace, out: Callable[..., None]) -> int:
    if args.revision != "head" and not args.cog:
        raise CommandError("a REVISION other than head needs --cog NAME (revisions are per cog)")
    if args.sql:
        if args.lock_timeout is not None:
            raise NXAlembicError("--lock-timeout has no meaning with --sql: offline mode takes no lock")
        project.sql("upgrade", args.cog, args.revision, out=print)
        return 0
    if args.lock_timeout is not None:
        project.lock = LockPolicy(args.lock_timeout)
    results = project.upgrade(args.cog, args.revision, report=_progress(out, "applied"))
    total = sum(len(r.steps) for r in results)
    out(f"upgraded {count(len(results), 'cog')}: {count(total, 'revision')} applied")
    return 0


def cmd_downgrade(project: Project, args: argparse.Namespace, out: Callable[..., None]) -> int:
    cog, revision = _downgrade_target(args, list(project.schema.cogs))
    if not args.cog_option and not getattr(args, "x_cog", None):
        project.cog_given_as = "as in 'nxalembic downgrade COG'"
    if args.sql:
        project.sql("downgrade", cog, revision, out=print)
    else:
        project.downgrade(cog, revision, report=_progress(out, "undone"))
    return 0


def _ask(question: str) -> bool:
    """Django-style question at the terminal; anything but y/yes is no."""
    try:
        return input(question).strip().lower() in ("y", "yes")
    except EOFError:
        return False


def cmd_migrate(project: Project, args: argparse.Namespace, out: Callable[..., None]) -> int:
    def report(cog: str, script: Any) -> None:
        out(f"{cog}: no changes" if script is None else f"{cog}: wrote {os.path.relpath(script.path)}")

    written = project.migrate(
        args.cog,
        args.message,
        args.empty,
        report,
        offline=args.offline,
        allow_drops=args.allow_drops,
        renames=args.rename,
        ask=_ask if sys.stdin.isatty() and not args.quiet else None,
    )
    out(f"{count(sum(1 for _, s in written if s), 'revision file')} written")
    return 0


def cmd_status(project: Project, args: argparse.Namespace, out: Callable[..., None]) -> int:
    status = project.status()
    if args.json:
        cogs = [{**asdict(c), "differs": c.differs} for c in status.cogs]
        print(json.dumps({**asdict(status), "cogs": cogs}, indent=2))
    else:
        status.print()
        if project.schema.no_extensions_hint:
            print(f"note: {project.schema.no_extensions_hint}")
    return status.behind_exit_code() if args.exit_code else 0


def cmd_check(project: Project, args: argparse.Namespace, out: Callable[..., None]) -> int:
    """Exit 0 only when every cog's models were compared, and match (:meth:`.compare.Status.check`)."""
    if not project.status().check():
        return 1
    out("all cogs: models match their migrations")
    return 0


COMMANDS = {
    "upgrade": cmd_upgrade,
    "downgrade": cmd_downgrade,
    "migrate": cmd_migrate,
    "status": cmd_status,
    "check": cmd_check,
}


def apply_x_arguments(args: argparse.Namespace) -> str | None:
    """Honour or refuse every ``-x``; return the cog of ``-x cog=`` (None without one)."""
    accepted = X_KEYS[args.command]
    cogs: list[str] = []
    for pair in args.x:
        key, sep, value = pair.partition("=")
        if key in PER_COG_KEYS and args.command != "init":
            continue  # version_table...: env.py refuses them with its own advice
        if key not in accepted:
            takes = f"it accepts {', '.join(f'-x {k}=' for k in accepted)}" if accepted else "it takes no -x"
            why = " (it covers every cog)" if key == "cog" else ""
            raise NXAlembicError(f"-x {key}= is not used by 'nxalembic {args.command}'{why}; {takes}")
        if not sep:
            raise NXAlembicError(f"-x {key} has no value; write -x {key}=VALUE")
        if key in BOOLEAN_X_KEYS and value.lower() not in TRUE | FALSE:
            raise NXAlembicError(
                f"-x {key}={value} is not true or false; write -x {key}=true or -x {key}=false"
            )
        if key == "cog":
            cogs.append(value)
    if len(set(cogs)) > 1:
        raise NXAlembicError(f"-x cog= is given {len(cogs)} times ({', '.join(cogs)}); give one cog")
    cog = cogs[0] if cogs else None
    given = getattr(args, "cog", None)
    if cog is not None and args.command in ("upgrade", "migrate"):
        if given is not None and given != cog:
            raise NXAlembicError(
                f"the cog is given twice, as --cog {given} and as -x cog={cog}; give it once"
            )
        args.cog = cog
    return cog


def run(args: argparse.Namespace, freeze: bool = False) -> int:
    """Run the parsed command; *freeze*: :func:`script`'s ``gc.freeze()`` once the bot is imported."""
    out: Callable[..., None] = (
        (lambda text="": None) if args.quiet else (lambda text="": print(text, flush=True))
    )
    x_cog = apply_x_arguments(args)
    if args.command == "init":
        return cmd_init(args, out)
    args.x_cog = x_cog
    project = Project(Path(args.config).resolve(), args.x)
    if freeze:
        gc.freeze()
    if not args.quiet:  # which database, first and on stderr: stdout stays machine-readable
        project.announce = lambda url: print(f"database: {hide_password(url)}", file=sys.stderr, flush=True)
    if x_cog is not None:
        project.cog_given_as = "as -x cog=NAME"
    return COMMANDS[args.command](project, args, out)


def script() -> int:
    """The console script: :func:`main`, the imported bot ``gc.freeze``-d (docs/performance.rst)."""
    return _main(None, freeze=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``nxalembic`` command with *argv* (default: ``sys.argv[1:]``); return its exit code.

    Failures are one ``FAILED:`` line on stderr (credentials masked) and exit code 1, Ctrl-C
    exit code 130; ``--raiseerr`` raises instead.  Nothing is frozen (unlike :func:`script`).
    """
    return _main(argv, freeze=False)


def _main(argv: Sequence[str] | None, freeze: bool) -> int:
    args = parser.parse_args(argv)
    args.x = [*args.x, *getattr(args, "x_after", [])]
    try:
        return run(args, freeze)
    except KeyboardInterrupt:
        if args.raiseerr:
            raise
        print(INTERRUPTED, file=sys.stderr, flush=True)
        return 130
    except (CommandError, NXAlembicError) as exc:
        if args.raiseerr:
            raise
        message = first_line(str(exc)) or type(exc).__name__
    except Exception as exc:  # an unexpected error: still one line unless --raiseerr
        if args.raiseerr:
            raise
        where = traceback.extract_tb(exc.__traceback__)[-1]
        message = (
            f"{described(exc)} ({file_line(Path(where.filename).name, where.lineno)}); "
            "rerun with --raiseerr for the traceback"
        )
    except SystemExit as exc:  # sys.exit() in user code: the command did not finish, so never exit 0
        where = traceback.extract_tb(exc.__traceback__)[-1]
        message = (
            f"sys.exit({exc.code!r}) was called at {file_line(where.filename, where.lineno)} during "
            f"'nxalembic {args.command}', which therefore did not finish; remove that call"
        )
        if args.raiseerr:
            raise RuntimeError(mask(message)) from exc
    print(mask(f"FAILED: {message}"), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(script())
