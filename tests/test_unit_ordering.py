"""Fast tier: the one dependency order (cogs upgraded after what they reference).

In-process, pure logic: no subprocess, no database.
"""

from __future__ import annotations

import pytest

from nxalembic_templates import discovery


def test_dependencies_come_first_and_ties_go_by_name() -> None:
    depends_on = {"music": {"core"}, "games": {"core", "music"}, "core": set()}
    assert discovery.dependency_order(["games", "music", "core"], depends_on) == ["core", "music", "games"]
    # the order does not depend on the order the names are given in
    assert discovery.dependency_order(["core", "music", "games"], depends_on) == ["core", "music", "games"]
    assert discovery.dependency_order(["b", "c", "a"], {}) == ["a", "b", "c"]


def test_dependencies_of_dependencies_are_included() -> None:
    depends_on = {"a": ["b"], "b": ["c"], "c": []}
    assert discovery.dependency_order(["a"], depends_on) == ["c", "b", "a"]


def test_each_name_once_even_when_reached_twice() -> None:
    # diamond: d depends on b and c, both on a
    depends_on = {"d": ["c", "b"], "b": ["a"], "c": ["a"]}
    assert discovery.dependency_order(["d", "a"], depends_on) == ["a", "b", "c", "d"]


def test_names_are_opaque_strings() -> None:
    # a table may be called music.songs: nothing is split on the dot
    assert discovery.dependency_order(["music.songs"], {"music.songs": ["music.artists"]}) == [
        "music.artists",
        "music.songs",
    ]


def test_a_cycle_is_handed_over_as_the_path_that_closes_it() -> None:
    seen: list[list[str]] = []
    order = discovery.dependency_order(["a"], {"a": ["b"], "b": ["c"], "c": ["b"]}, seen.append)
    assert seen == [["b", "c", "b"]]
    assert order == ["c", "b", "a"]


def test_a_cycle_may_raise() -> None:
    def refuse(cycle: list[str]) -> None:
        raise ValueError(" -> ".join(cycle))

    with pytest.raises(ValueError, match=r"^a -> b -> a$"):
        discovery.dependency_order(["a", "b"], {"a": ["b"], "b": ["a"]}, refuse)


def test_without_on_cycle_the_closing_edge_is_ignored() -> None:
    assert discovery.dependency_order(["a", "b"], {"a": ["b"], "b": ["a"]}) == ["b", "a"]
    # a self-reference is a cycle too
    seen: list[list[str]] = []
    assert discovery.dependency_order(["a"], {"a": ["a"]}, seen.append) == ["a"]
    assert seen == [["a", "a"]]
