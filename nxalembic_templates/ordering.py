"""One dependency order for everything that must run after what it references.

Cogs are upgraded after the cogs their foreign keys point at; a cog's tables are dropped
before the tables they point at.  Names are opaque strings: a table may be called
``music.songs`` (ormar allows any ``tablename``), so nothing here splits them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping


def dependency_order(
    wanted: Iterable[str],
    depends_on: Mapping[str, Iterable[str]],
    on_cycle: Callable[[list[str]], None] | None = None,
) -> list[str]:
    """*wanted* and everything it depends on (transitively), each after its dependencies.

    Ties go by name, so the order is the same on every run.  A cycle is handed to *on_cycle*
    as the path that closes it (``[a, b, a]``), which may raise; without *on_cycle* the edge
    that closes a cycle is ignored (any order will do, the database says the rest).
    """
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "active":
            if on_cycle is not None:
                on_cycle([*path[path.index(name) :], name])
            return
        state[name] = "active"
        for dependency in sorted(depends_on.get(name, ())):
            visit(dependency, [*path, name])
        state[name] = "done"
        order.append(name)

    for name in sorted(wanted):
        visit(name, [])
    return order
