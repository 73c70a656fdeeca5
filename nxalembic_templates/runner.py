"""Internal: Alembic commands for many cogs in one process: what the ``nxalembic`` command runs.

The bot is imported once; all cogs share one connection; each cog's step runs the very same
env.py (and so the same discovery and per-cog scope) as ``alembic -x cog=NAME ...`` does.  What
each step asks of env.py (the cog, the discovered bot, the shared connection, the autogenerate
flags) is one :class:`~.request.CogRequest`, attached to the Alembic config before each call.

``upgrade``, ``downgrade``, ``--sql``, ``migrate`` and a cog's own comparison call
:mod:`alembic.command`, one call per cog.  Not through it: a cog already at its head (one read of
every version table tells; nothing runs for it), the shared comparison of several cogs
(:func:`.compare.screened`: env.py through ``run_env``), and the count of pending revisions.

``status``, ``check`` and ``migrate`` never change the database, not even inside a rolled-back
transaction (a revision may commit on its own, e.g. in ``autocommit_block()``): they open a
read-only connection, compare a cog that is at its head with the database, and a cog with
pending revisions with a scratch replay of its own history.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import sys
from argparse import Namespace
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import URL, Connection

from . import compare
from .compare import CogBehind, Status, count
from .discovery import BotSchema
from .engines import parse_url, require_database, with_connection
from .environment import load_schema
from .errors import CogsWithoutRevisions, LockTimeout, NXAlembicError, unwrapped
from .history import cog_script, forked_history
from .locking import LockPolicy, one_in_process, to_stderr
from .request import CogRequest, attach, database_url, parse_renames, sql_end_marked
from .scope import CogScope
from .settings import pyproject_for

__all__ = ["MigrationResult", "Project"]

T = TypeVar("T")


@dataclass
class MigrationResult:
    """What one cog's ``upgrade`` or ``downgrade`` did: the revisions stepped to, and where it is now."""

    cog: str
    steps: list[str]
    now: list[str]


class Project:
    """An ``alembic.ini`` plus the bot it migrates, opened once for a whole command."""

    #: How the user named the cog on the command line, for the "unknown cog" advice.
    cog_given_as = "to --cog"

    def __init__(
        self,
        alembic_ini: Path,
        x_arguments: Sequence[str] = (),
        *,
        schema: BotSchema | None = None,
        url: str | None = None,
    ) -> None:
        """Open *alembic_ini* and the bot it migrates.

        *schema*: the bot discovered already (the start-up API has the running bot in hand and
        must not import its module a second time); otherwise env.py's discovery imports it.
        *url*: the database URL, as ``-x url=`` gives it.
        """
        if not alembic_ini.is_file():
            raise NXAlembicError(
                f"no Alembic config at {alembic_ini}; run 'nxalembic init' or pass -c PATH/alembic.ini"
            )
        # x: for env.py files that read context.get_x_argument() themselves, as with stock alembic
        self.config = Config(
            str(alembic_ini),
            toml_file=pyproject_for(alembic_ini),
            cmd_opts=Namespace(x=list(x_arguments), quiet=True),
            stdout=io.StringIO(),
        )
        #: What every command of this process asks (the ``-x`` pairs); each Alembic call adds its cog.
        self.request = CogRequest.from_x(
            x_arguments, configure_logger=False, **({} if url is None else {"url": url})
        )
        self.request.schema = schema
        attach(self.config, self.request)
        self.schema: BotSchema = load_schema(self.config)
        self._connection: Connection | None = None
        with _sys_path_kept():
            template = ScriptDirectory.from_config(self.config)
        self.script_location = Path(template.dir).resolve()
        self._sourceless = template.sourceless
        #: Computed once per cog and process (see docs/performance.rst): scopes, loaded histories.
        self._scopes: dict[str, CogScope] = {}
        self._scripts: dict[str, ScriptDirectory] = {}
        #: Called with the database URL just before the command connects (``database:`` line).
        self.announce: Callable[[URL], None] | None = None
        #: How long to wait for the migration lock, and where the wait is reported.
        self.lock = LockPolicy()

    # -- building blocks ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        return database_url(self.config, self.request, self.schema)

    def order(self, only: str | None = None, reverse: bool = False) -> list[str]:
        """The cogs to work on, referenced cogs first (last when *reverse*).

        A foreign-key cycle between cogs is an error here (it names the cycle): no order
        would be right.  A single cog (``--cog``) needs no order, so a cycle does not stop it.
        """
        if only is not None:
            if only not in self.schema.cogs:
                raise self.schema.unknown_cog(only, f"; pass one of them {self.cog_given_as}")
            return [only]
        order = self.schema.upgrade_order()
        return order[::-1] if reverse else order

    def scope(self, cog: str) -> CogScope:
        scope = self._scopes.get(cog)
        if scope is None:
            scope = self._scopes[cog] = CogScope.for_cog(self.schema, cog, self.script_location)
        return scope

    def script(self, cog: str) -> ScriptDirectory:
        """The cog's own history, loaded and checked once per process.

        Its revision map is handed to env.py for every Alembic command on the cog
        (:attr:`.CogRequest.revisions`), so each revision file is read and executed once.
        """
        script = self._scripts.get(cog)
        if script is None:
            scope = self.scope(cog)
            script = cog_script(
                self.script_location,
                scope.version_location,
                cog,
                scope.other_locations,
                sourceless=self._sourceless,
            )
            self._scripts[cog] = script
        return script

    @contextlib.contextmanager
    def selected(
        self, cog: str, command: str, configure: dict[str, Any] | None = None, **request: Any
    ) -> Iterator[None]:
        """Ask env.py to run Alembic's *command* for *cog* next; Alembic's output is swallowed.

        *configure* goes to ``context.configure()``; *request* sets other
        :class:`~.request.CogRequest` fields (``autogenerate``, ``offline``...).  An Alembic error
        that does not say which cog it is about (``Can't locate revision ...``) gets the cog's
        name in front, so that every failure line names its cog.
        """
        attach(
            self.config,
            dataclasses.replace(
                self.request,
                cog=cog,
                command=command,
                configure=configure or {},
                connection=self._connection,
                revisions=lambda: self.script(cog).revision_map,
                **{"autogenerate": False, **request},
            ),
        )
        self.config.stdout = io.StringIO()
        try:
            with one_in_process(self.lock), _sys_path_kept():
                yield
        except CommandError as exc:
            ours = unwrapped(exc)  # env.py reports our errors to Alembic as CommandError
            # B904 does not fit here: `ours` is exc itself or the error exc wraps, so chaining it
            # to exc would only make a loop.
            if isinstance(ours, LockTimeout):
                raise ours  # noqa: B904  (about the database, not the cog: kept as it is for callers)
            if f"cog {cog!r}" in str(exc):
                raise ours  # noqa: B904
            raise NXAlembicError(f"cog {cog!r}: {exc}") from exc
        finally:
            attach(self.config, self.request)

    def connected(self, work: Callable[[Connection], T], read_only: bool = False) -> T:
        """Run *work* on one shared connection that every cog's env.py uses.

        A *read_only* connection takes no migration lock and cannot write (see :mod:`.locking`).
        Another thread's command running Alembic is waited for first (:func:`.locking.one_in_process`).
        """

        def run(connection: Connection) -> T:
            self.check_dialect(connection.dialect)
            self._connection = connection
            try:
                return work(connection)
            finally:
                self._connection = None

        with one_in_process(self.lock):
            url = self.url
            if self.announce is not None:
                self.announce(parse_url(url))  # parsed first: a URL that cannot be masked is never shown
            return with_connection(url, run, read_only=read_only, lock=self.lock)

    def check_dialect(self, dialect: Any) -> None:
        """Every cog's version table must fit the database, checked before any cog is touched."""
        for cog in self.schema.cogs:
            self.scope(cog).check_dialect(dialect)

    def unapplied(self, cog: str, current: Sequence[str]) -> int:
        """How many revisions Alembic's ``upgrade heads`` would apply, *current* being the cog's version rows.

        ``implicit_base``, as ``upgrade`` walks: every revision not in the ancestry of *current*
        counts (another branch, a second root, a revision that only ``depends_on`` it).
        """
        return len(list(self.script(cog).iterate_revisions("heads", tuple(current), implicit_base=True)))

    # -- commands ----------------------------------------------------------------------------

    def upgrade(
        self,
        only: str | None = None,
        revision: str = "head",
        report: Callable[[MigrationResult], None] = print,
    ) -> list[MigrationResult]:
        """Upgrade cogs one by one (each committed on its own); stop at the first failure.

        The error of a failed cog says which cogs after it were not touched.  Every cog's
        history is loaded and checked first, so a broken revision file or a forked history
        stops the run before any cog is changed.
        """
        order = self.order(only)
        for cog in order:
            self.check_history(cog, single_head=revision == "head")
        # a cog with models and no revisions: nothing would create its tables (raised at the end)
        unborn = [cog for cog in order if revision == "head" and not self.script(cog).get_heads()]

        def work(connection: Connection) -> list[MigrationResult]:
            results = []
            # every deploy runs this with nothing to do: one read of every version table tells
            # which cogs are at their head already, and those need no Alembic command (nor env.py)
            current = compare.current(self, connection, order) if revision == "head" else {}
            for position, cog in enumerate(order):
                if cog in unborn:
                    continue
                steps: list[str] = []
                heads = sorted(self.script(cog).get_heads())
                if current.get(cog) == heads:
                    results.append(result := MigrationResult(cog, [], heads))
                    report(result)
                    continue
                try:
                    with self.selected(cog, "upgrade", {"on_version_apply": _collect(steps)}):
                        command.upgrade(self.config, revision)
                except LockTimeout:
                    raise
                except (CommandError, NXAlembicError) as exc:
                    untouched = order[position + 1 :]
                    if not untouched:
                        raise
                    raise NXAlembicError(f"{exc}; not touched: {', '.join(untouched)}") from exc
                if revision == "head":  # Alembic succeeded: the cog is at its heads
                    result = MigrationResult(cog, steps, heads)
                else:
                    result = MigrationResult(cog, steps, compare.current(self, connection, [cog])[cog])
                    connection.rollback()  # end the read's implicit transaction before the next cog
                results.append(result)
                report(result)
            if unborn:  # after upgrading the others: a deploy step must not pass with it
                raise CogsWithoutRevisions(unborn)
            return results

        return self.connected(work)

    def behind(self, only: str | None = None) -> list[CogBehind]:
        """How far each cog's database is behind its head (:func:`.compare.behind`), changing nothing."""
        order = self.order(only)
        for cog in order:
            self.check_history(cog)
        require_database(self.url)
        return self.connected(lambda connection: compare.behind(self, connection, order), read_only=True)

    def check_history(self, cog: str, single_head: bool = True) -> None:
        """Load the cog's revision files (a broken one is named) and refuse a forked history."""
        try:
            self.script(cog)
        except NXAlembicError as exc:
            if str(exc).startswith(f"cog {cog!r}: "):
                raise
            raise NXAlembicError(f"cog {cog!r}: {exc}") from exc
        if single_head and (forked := self.forked(cog)) is not None:
            raise forked

    def forked(self, cog: str) -> NXAlembicError | None:
        """The error of a cog with several heads (Alembic's ``get_heads()``), else ``None``.

        The one answer to "has this history forked?": ``upgrade`` and verify mode refuse with
        it, ``status`` and ``check`` report it (:attr:`.compare.CogStatus.forked`).
        """
        heads = self.script(cog).get_heads()
        return forked_history(cog, heads) if len(heads) > 1 else None

    def downgrade(
        self, cog: str, revision: str = "-1", report: Callable[[MigrationResult], None] = print
    ) -> MigrationResult:
        """Downgrade one cog (to the previous revision by default)."""
        self.order(cog)

        def work(connection: Connection) -> MigrationResult:
            steps: list[str] = []
            with self.selected(cog, "downgrade", {"on_version_apply": _collect(steps)}):
                command.downgrade(self.config, revision)
            result = MigrationResult(cog, steps, compare.current(self, connection, [cog])[cog])
            connection.rollback()
            report(result)
            return result

        return self.connected(work)

    def sql(
        self, direction: str, only: str | None, revision: str, out: Callable[[str], None] = print
    ) -> None:
        """Offline mode: print each cog's SQL (upgrade: referenced cogs first), a failure noted at its end."""
        self.check_dialect(parse_url(self.url).get_dialect())
        order = self.order(only, reverse=direction == "downgrade")
        for position, cog in enumerate(order):
            out(f"-- cog {cog}: {self.scope(cog).version_table}")
            try:
                with sql_end_marked(self.config, out), self.selected(cog, direction):
                    getattr(command, direction)(self.config, revision, sql=True)
            except (CommandError, NXAlembicError) as exc:
                if rest := order[position + 1 :]:
                    raise NXAlembicError(f"{exc}; not printed: {', '.join(rest)}") from exc
                raise

    def migrate(
        self,
        only: str | None,
        message: str | None,
        empty: bool,
        report: Callable[[str, Any], None],
        offline: bool = False,
        allow_drops: bool = False,
        renames: Sequence[str] = (),
        ask: Callable[[str], bool] | None = None,
        note: Callable[[str], None] | None = None,
    ) -> list[tuple[str, Any]]:
        """Write the next revision of each cog.

        A cog at its head is compared with the database (read-only); a cog with pending
        revisions with a scratch replay of them (*note* says so), never by applying them to the
        live database.  With *offline*, every cog is compared with its replay, no database opened.
        """
        order = self.order(only)
        note = note or to_stderr
        offline = offline or self.request.offline
        autogenerate = {
            "autogenerate": not empty,
            "ask": ask,
            "allow_drops": self.request.allow_drops or allow_drops,
            "renames": self.request.renames + parse_renames(renames),
        }

        def generate(replayed: Collection[str], unchanged: Collection[str] = ()) -> list[tuple[str, Any]]:
            written: list[tuple[str, Any]] = []
            for cog in order:
                if cog in unchanged:  # what its own autogenerate would find: nothing, so no file
                    written.append((cog, None))
                    report(cog, None)
                    continue
                # dont_mutate: even a blank revision must not create the version table
                with self.selected(
                    cog, "revision", {"dont_mutate": True}, **autogenerate, offline=offline or cog in replayed
                ):
                    script = command.revision(self.config, message=message, autogenerate=not empty)
                written.append((cog, script or None))
                report(cog, script or None)
            return written

        def work(connection: Connection) -> list[tuple[str, Any]]:
            replayed = set()
            current = compare.current(self, connection, order)
            for cog in order:
                pending = self.unapplied(cog, current[cog])
                if pending or current[cog] != sorted(self.script(cog).get_heads()):
                    replayed.add(cog)
                    if not empty:
                        note(
                            f"cog {cog!r}: {count(pending, 'revision')} not applied to the database: "
                            "compared the models with a scratch replay of its revisions (run 'nxalembic "
                            "upgrade' first to compare with the database itself)"
                        )
            # the cogs at their head are compared together first (see status); not with rename
            # hints or when a blank revision is asked for
            if empty or autogenerate["renames"]:
                return generate(replayed)
            unowned = compare.unowned_tables(self, connection)
            connection.rollback()
            at_head = [cog for cog in order if cog not in replayed]
            return generate(replayed, compare.screened(self, connection, at_head, unowned))

        return generate(set()) if offline else self.connected(work, read_only=True)

    def status(self) -> Status:
        """Where each cog is, and whether its models differ from its migrations (:func:`.compare.status`)."""
        require_database(self.url)
        return self.connected(lambda connection: compare.status(self, connection), read_only=True)


@contextlib.contextmanager
def _sys_path_kept() -> Iterator[None]:
    """Let an Alembic command prepend to ``sys.path`` only what is not there yet.

    Every command builds a :class:`ScriptDirectory` from alembic.ini, which puts the
    ``prepend_sys_path`` folders in front of ``sys.path`` again: one more entry per cog and
    command, and every later import that misses looks in each of them.
    """
    before = list(sys.path)
    try:
        yield
    finally:
        added = len(sys.path) - len(before)
        if added > 0 and sys.path[added:] == before:
            present = set(before)
            sys.path[:added] = [entry for entry in dict.fromkeys(sys.path[:added]) if entry not in present]


def _collect(into: list[str]) -> Callable[..., None]:
    """An ``on_version_apply`` hook: the revisions Alembic steps to, for the progress line."""

    def on_version_apply(*, step: Any, **_: Any) -> None:
        if step.is_upgrade:
            into.append(step.up_revision_id)
        else:
            into.append(step.down_revision_ids[0] if step.down_revision_ids else "base")

    return on_version_apply
