"""Fast tier: reading the settings (nxalembic.ini, [tool.nxalembic], alembic.ini for the start-up
fast path) and what they say about version tables and revisions folders.

In-process: real files in a temporary folder, read by the package's own functions.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from nxalembic_templates import settings
from nxalembic_templates.errors import NXAlembicError


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """An empty project folder, also the current directory."""
    project = tmp_path / "project"
    project.mkdir()
    before = Path.cwd()
    os.chdir(project)
    try:
        yield project
    finally:
        os.chdir(before)


def ini(folder: Path, *lines: str, name: str = "nxalembic.ini") -> Path:
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def toml(folder: Path, text: str) -> Path:
    path = folder / "pyproject.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load(folder: Path, *lines: str) -> settings.Settings:
    return settings.load_settings(ini(folder, "[nxalembic]", *lines))


def refused(folder: Path, *lines: str) -> str:
    with pytest.raises(NXAlembicError) as error:
        load(folder, *lines)
    return str(error.value)


# -- nxalembic.ini ---------------------------------------------------------------------------------


def test_defaults(folder: Path) -> None:
    found = load(folder, "module = mybot.main")
    assert found == settings.Settings(path=folder / "nxalembic.ini", module="mybot.main")
    assert found.bot == "bot"
    assert found.url is None
    assert found.version_table == "alembic_version_{cog}"
    assert found.version_location == "{script_location}/versions/{cog}"
    assert found.core_cog == "core"
    assert found.extensions == ()
    assert found.root == folder


def test_every_key(folder: Path) -> None:
    found = load(
        folder,
        "module = mybot.main   # from mybot.main import bot",
        "bot = make_bot ; a function",
        "url = sqlite:///bot.db",
        "version_table = alembic.{cog}",
        "version_location = {cog_dir}/migrations",
        "core_cog = shared",
        "extensions = mybot.cogs.music, mybot.cogs",
    )
    assert found.module == "mybot.main"
    assert found.bot == "make_bot"
    assert found.url == "sqlite:///bot.db"
    assert found.version_table == "alembic.{cog}"
    assert found.version_location == "{cog_dir}/migrations"
    assert found.core_cog == "shared"
    assert found.extensions == ("mybot.cogs.music", "mybot.cogs")


def test_percent_signs_are_text(folder: Path) -> None:
    # a URL-quoted password: nxalembic.ini does no interpolation
    assert load(folder, "module = m", "url = postgresql://u:p%40ss@h/db").url == "postgresql://u:p%40ss@h/db"


def test_blank_values_are_defaults(folder: Path) -> None:
    found = load(folder, "module = m", "bot =", "url =   ")
    assert (found.bot, found.url) == ("bot", None)


def test_a_byte_order_mark_is_no_text(folder: Path) -> None:
    path = folder / "nxalembic.ini"
    path.write_bytes(b"\xef\xbb\xbf[nxalembic]\nmodule = m\n")
    assert settings.load_settings(path).module == "m"


def test_file_errors(folder: Path) -> None:
    path = ini(folder, "module = m")
    with pytest.raises(NXAlembicError) as error:
        settings.load_settings(path)
    assert str(error.value) == (
        f"{path} does not start with a section header; put a [nxalembic] line above 'module = ...'"
    )
    path = ini(folder, "[other]", "module = m")
    with pytest.raises(NXAlembicError) as error:
        settings.load_settings(path)
    assert str(error.value) == (
        f"{path} has no [nxalembic] section; add 'module = yourbot.main' and 'bot = bot' under [nxalembic] "
        "in nxalembic.ini"
    )
    path.write_bytes(b"[nxalembic]\nmodule = caf\xe9\n")
    with pytest.raises(NXAlembicError) as error:
        settings.load_settings(path)
    assert str(error.value) == (
        f"{path} is not UTF-8 text (byte 0xe9 at offset 24); save it with UTF-8 encoding"
    )
    path = ini(folder, "[nxalembic]", "module = a", "module = b")
    with pytest.raises(NXAlembicError, match=rf"^cannot read {path}: While reading from"):
        settings.load_settings(path)
    with pytest.raises(NXAlembicError, match=r"^cannot read .*missing\.ini"):
        settings.load_settings(folder / "missing.ini")


def test_unknown_keys(folder: Path) -> None:
    assert refused(folder, "module = m", "versions = x", "bots = y") == (
        f"{folder / 'nxalembic.ini'}: unknown key(s) bots, versions in [nxalembic]; known keys are bot, "
        "core_cog, extensions, module, url, version_location, version_table"
    )


def test_module_is_required_and_dotted(folder: Path) -> None:
    path = folder / "nxalembic.ini"
    assert refused(folder, "bot = bot") == (
        f"{path}: needs 'module = yourbot.main' under [nxalembic] in nxalembic.ini (the module that creates "
        "your bot)"
    )
    assert refused(folder, "module =  ") == refused(folder, "bot = bot")
    assert refused(folder, "module = mybot/main.py") == (
        f"{path}: module = 'mybot/main.py' is not a dotted Python module path; write 'module = mybot.main' "
        "under [nxalembic] in nxalembic.ini (the import path, not the file)"
    )
    assert refused(folder, "module = mybot\\main.py").endswith(
        "write 'module = mybot.main' under [nxalembic] in nxalembic.ini (the import path, not the file)"
    )
    assert refused(folder, "module = my-bot/main.py") == (
        f"{path}: module = 'my-bot/main.py' is not a dotted Python module path"
    )
    assert refused(folder, "module = a..b").endswith("is not a dotted Python module path")
    assert refused(folder, "module = /mybot/main.py").endswith(
        "write 'module = mybot.main' under [nxalembic] in nxalembic.ini (the import path, not the file)"
    )
    assert load(folder, "module = _a.b2.C").module == "_a.b2.C"


def test_bot_is_an_attribute_name(folder: Path) -> None:
    path = folder / "nxalembic.ini"
    assert refused(folder, "module = m", "bot = make_bot()") == (
        f"{path}: bot = 'make_bot()' is not a Python attribute name; write 'bot = make_bot' under "
        "[nxalembic] in nxalembic.ini (a function or class there builds the bot)"
    )
    assert refused(folder, "module = m", "bot = a.b") == f"{path}: bot = 'a.b' is not a Python attribute name"
    assert refused(folder, "module = m", "bot = 1bot()") == (
        f"{path}: bot = '1bot()' is not a Python attribute name"
    )


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (
            "alembic_version",
            "version_table = 'alembic_version' gives the one table 'alembic_version' for every cog, so cogs "
            "would share one history; write {cog} with single braces, e.g. alembic_version_{cog}",
        ),
        (
            "v_{{cog}}",
            "version_table = 'v_{{cog}}' gives the one table 'v_{cog}' for every cog, so cogs would share "
            "one history; write {cog} with single braces, e.g. alembic_version_{cog}",
        ),
        (
            "v_{cog}_{name}",
            "version_table = 'v_{cog}_{name}' must contain '{cog}' and no other placeholder or format spec "
            "(e.g. alembic_version_{cog} or alembic.{cog})",
        ),
        (
            "v_{name}",
            "version_table = 'v_{name}' must contain '{cog}' and no other placeholder or format spec "
            "(e.g. alembic_version_{cog} or alembic.{cog})",
        ),
        ("v_{cog:>20}", "version_table = 'v_{cog:>20}' must contain '{cog}' and no other placeholder"),
        ("v_{cog!r}", "version_table = 'v_{cog!r}' must contain '{cog}' and no other placeholder"),
        (
            "v_{cog}x{",
            "version_table = 'v_{cog}x{' is not a valid pattern (Single '{' encountered in format string); "
            "write placeholders as {cog} with both braces",
        ),
        (
            "v-{cog}",
            "version_table = 'v-{cog}' gives 'v-first_cog', which is not a plain table name; use only "
            "letters, digits, '_' and '.', e.g. alembic_version_{cog}",
        ),
        (
            "{cog};drop",
            "version_table = '{cog};drop' gives 'first_cog;drop', which is not a plain table name",
        ),
        ("1_{cog}", "version_table = '1_{cog}' gives '1_first_cog', which is not a plain table name"),
    ],
)
def test_version_table_pattern_refused(folder: Path, pattern: str, message: str) -> None:
    assert refused(folder, "module = m", f"version_table = {pattern}").startswith(
        f"{folder / 'nxalembic.ini'}: {message}"
    )


def test_version_table_patterns_accepted(folder: Path) -> None:
    for pattern in ("alembic.{cog}", "_v_{cog}", "{cog}_versions", "a{cog}b{cog}"):
        assert load(folder, "module = m", f"version_table = {pattern}").version_table == pattern


def test_version_location_pattern(folder: Path) -> None:
    path = folder / "nxalembic.ini"
    expected = "must contain {cog} or {cog_dir} and may use only {cog}, {cog_dir}, {here}, {script_location}"
    assert refused(folder, "module = m", "version_location = {here}/versions") == (
        f"{path}: version_location = '{{here}}/versions' {expected}"
    )
    assert refused(folder, "module = m", "version_location = {cog}/{other}").endswith(expected)
    assert refused(folder, "module = m", "version_location = {cog") == (
        f"{path}: version_location = '{{cog' is not a valid pattern (expected '}}' before end of string); "
        "write placeholders as {cog} with both braces"
    )
    for pattern in ("{cog_dir}/m", "{here}/{cog}", "{script_location}/v/{cog}", "/abs/{cog}/{cog_dir}"):
        assert load(folder, "module = m", f"version_location = {pattern}").version_location == pattern


def test_core_cog_is_a_name(folder: Path) -> None:
    assert refused(folder, "module = m", "core_cog = my-core") == (
        f"{folder / 'nxalembic.ini'}: core_cog = 'my-core' must match [A-Za-z_][A-Za-z0-9_]*"
    )


def test_extensions_one_a_line_or_with_commas(folder: Path) -> None:
    found = load(folder, "module = m", "extensions =", "    a.b", "    c, d", "", "    a.b ,")
    assert found.extensions == ("a.b", "c", "d")
    assert settings.parse_extensions(folder, "") == ()
    assert settings.parse_extensions(folder, " x ,, y\n\n z") == ("x", "y", "z")
    path = folder / "nxalembic.ini"
    with pytest.raises(NXAlembicError) as error:
        settings.parse_extensions(path, "a.b\nmy-cogs/music.py")
    assert str(error.value) == (
        f"{path}: extensions: 'my-cogs/music.py' is not a dotted module name; write 'extensions = "
        "mybot.cogs.music, mybot.cogs.games' or 'extensions = mybot.cogs' under [nxalembic] in nxalembic.ini"
    )


def test_a_bad_extension_names_the_file(folder: Path) -> None:
    assert refused(folder, "module = m", "extensions = a-b").startswith(
        f"{folder / 'nxalembic.ini'}: extensions: 'a-b' is not a dotted module name"
    )


def test_line_breaks_and_control_characters_refused(folder: Path) -> None:
    path = folder / "nxalembic.ini"
    assert refused(folder, "module = m", "url = sqlite:///a", "  .db") == (
        f"{path}: the value of url contains a line break (an indented line continues the value above it); "
        "write url = ... on one line and start every other line at the left margin"
    )
    assert refused(folder, "module = m", "core_cog = a\u200bb") == (
        f"{path}: the value of core_cog contains the control character '\\u200b'; write core_cog = ... on "
        "one line and start every other line at the left margin"
    )
    assert "control character '\\x07'" in refused(folder, "module = m", "bot = b\x07")
    assert "control character '\\u2028'" in refused(folder, "module = m", "bot = a\u2028b")
    assert "control character '\\u2029'" in refused(folder, "module = m", "bot = a\u2029b")
    # a list may span lines, indented with tabs too; its other control characters are still refused
    assert "control character '\\x0b'" in refused(folder, "module = m", "extensions = a\x0bb")
    assert "'a\\tb' is not a dotted module name" in refused(folder, "module = m", "extensions = a\tb")
    assert load(folder, "module = m", "extensions = a", "  b", "\tc").extensions == ("a", "b", "c")
    # printable non-ASCII is fine
    assert load(folder, "module = m", "url = sqlite:///bücher.db").url == "sqlite:///bücher.db"


# -- [tool.nxalembic] in pyproject.toml -------------------------------------------------------------


def test_pyproject_table(folder: Path) -> None:
    path = toml(
        folder,
        '[tool.nxalembic]\nmodule = "mybot.main"\nbot = "bot"\nextensions = ["a.b", "c"]\n'
        'version_table = "alembic.{cog}"\n',
    )
    found = settings.load_settings(path)
    assert found == settings.Settings(
        path=path, module="mybot.main", version_table="alembic.{cog}", extensions=("a.b", "c")
    )
    assert settings.load_settings(
        toml(folder, '[tool.nxalembic]\nmodule = "m"\nextensions = "a, b"\n')
    ).extensions == (
        "a",
        "b",
    )


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("true", "a boolean"),
        ("1", "an integer"),
        ("1.5", "a float"),
        ('["a"]', "an array"),
        ("{a = 1}", "a table"),
        ("1979-05-27", "a date or time"),
    ],
)
def test_pyproject_values_are_strings(folder: Path, value: str, kind: str) -> None:
    path = toml(folder, f'[tool.nxalembic]\nmodule = "m"\nbot = {value}\n')
    with pytest.raises(NXAlembicError) as error:
        settings.load_settings(path)
    assert (
        str(error.value)
        == f'{path}: [tool.nxalembic] bot must be a string in quotes (bot = "..."), not {kind}'
    )


def test_pyproject_extension_list_of_strings_only(folder: Path) -> None:
    path = toml(folder, '[tool.nxalembic]\nmodule = "m"\nextensions = ["a", 1]\n')
    with pytest.raises(NXAlembicError) as error:
        settings.load_settings(path)
    assert str(error.value) == (
        f'{path}: [tool.nxalembic] extensions must be a string in quotes (extensions = "...") or an array '
        'of strings (extensions = ["...", "..."]), not an array'
    )
    path = toml(folder, '[tool.nxalembic]\nmodule = "m"\nextensions = """\n\ta.b,\n\n\tc\n"""\n')
    assert settings.load_settings(path).extensions == ("a.b", "c")  # a multi-line string, tab-indented


#: docs/pyproject.rst: every form ``extensions`` takes in pyproject.toml, as the page writes it.
DOCUMENTED_EXTENSIONS = [
    ('extensions = "demobot.cogs"', ("demobot.cogs",)),
    (
        'extensions = "demobot.cogs.music, demobot.cogs.economy"',
        ("demobot.cogs.music", "demobot.cogs.economy"),
    ),
    (
        'extensions = ["demobot.cogs.music", "demobot.cogs.economy"]',
        ("demobot.cogs.music", "demobot.cogs.economy"),
    ),
    (
        'extensions = """\n    demobot.cogs.music\n    demobot.cogs.economy\n"""',
        ("demobot.cogs.music", "demobot.cogs.economy"),
    ),
]


@pytest.mark.parametrize(("line", "names"), DOCUMENTED_EXTENSIONS)
def test_documented_extension_forms(folder: Path, line: str, names: tuple[str, ...]) -> None:
    page = (Path(__file__).parent.parent / "docs" / "pyproject.rst").read_text(encoding="utf-8")
    assert " ".join(line.split()) in " ".join(page.split()), "not on the page"  # as written, wrapped or not
    path = toml(folder, f'[tool.nxalembic]\nmodule = "m"\n{line}\n')
    assert settings.load_settings(path).extensions == names


@pytest.mark.parametrize(
    "values",
    [
        ("yourbot.main",),
        ("KitBot",),
        ("postgresql://u:p%40#;ss@h/db?x=1",),
        ("a.b", "c", "d.e.f"),
        ('q"uote\\',),
    ],
)
def test_a_suggested_line_pastes_into_either_file(folder: Path, values: tuple[str, ...]) -> None:
    """Every hint spells its settings with setting_line: the line reads back as the value, in TOML and ini."""
    key = "extensions" if len(values) > 1 else "url"
    pyproject = toml(folder, f"[tool.nxalembic]\n{settings.setting_line('pyproject.toml', key, *values)}\n")
    assert settings._toml_values(pyproject)[key].split("\n") == list(values)
    if '"' not in values[0]:  # a quote is written as it is in ini syntax
        ini_file = ini(
            folder, "[nxalembic]", "module = m", settings.setting_line("nxalembic.ini", key, *values)
        )
        read = settings.load_settings(ini_file)
        assert (read.extensions if len(values) > 1 else (read.url,)) == values
    hint = settings.setting_hint(pyproject, (key, *values), ("bot", "KitBot"))
    assert hint.endswith(" under [tool.nxalembic] in pyproject.toml")
    assert hint.startswith(f"'{settings.setting_line(pyproject, key, *values)}' and 'bot = \"KitBot\"'")


def test_pyproject_errors(folder: Path) -> None:
    path = toml(folder, '[tool.other]\nx = "y"\n')
    with pytest.raises(NXAlembicError) as error:
        settings.load_settings(path)
    assert str(error.value) == (
        f"{path} has no [tool.nxalembic] table; add 'module = \"yourbot.main\"' and 'bot = \"bot\"' under "
        "[tool.nxalembic] in pyproject.toml"
    )
    path = toml(folder, 'tool = "x"\n')
    with pytest.raises(NXAlembicError, match=r"has no \[tool\.nxalembic\] table"):
        settings.load_settings(path)
    path = toml(folder, '[tool]\nnxalembic = "mybot.main"\n')
    with pytest.raises(NXAlembicError) as error:
        settings.load_settings(path)
    assert str(error.value) == (
        f"{path}: tool.nxalembic must be a table "
        '([tool.nxalembic] with module = "yourbot.main"), not a string'
    )
    path = toml(folder, "[tool.nxalembic\n")
    with pytest.raises(NXAlembicError) as error:
        settings.load_settings(path)
    assert str(error.value).startswith(f"{path} is not valid TOML: ")
    assert "(at line 1, column 16)" in str(error.value)  # tomllib's own words
    assert "\n" not in str(error.value)
    path = toml(folder, '[tool.nxalembic]\nmodule = "m"\nurl = "a\\nb"\n')
    with pytest.raises(NXAlembicError) as error:
        settings.load_settings(path)
    assert str(error.value) == (
        f"{path}: [tool.nxalembic] url contains the control character '\\n'; "
        'write url = "..." as one plain line'
    )
    path = toml(folder, '[tool.nxalembic]\nmodule = "m"\nversions = "x"\n')
    with pytest.raises(NXAlembicError, match=r"unknown key\(s\) versions in \[tool.nxalembic\]"):
        settings.load_settings(path)
    path = toml(folder, "[tool.nxalembic]\n")
    with pytest.raises(NXAlembicError, match=r"needs 'module = \"yourbot.main\"' under \[tool.nxalembic\]"):
        settings.load_settings(path)
    with pytest.raises(NXAlembicError, match=r"^cannot read .*missing\.toml: \[Errno 2\] No such file"):
        settings.read_pyproject(folder / "missing.toml")


# -- which settings file ---------------------------------------------------------------------------


def test_config_in(folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert settings.config_in(folder) is None
    toml(folder, "[tool.black]\nline-length = 1\n")
    assert settings.config_in(folder) is None
    pyproject = toml(folder, '[tool.nxalembic]\nmodule = "m"\n')
    assert settings.config_in(folder) == pyproject
    path = ini(folder, "[nxalembic]", "module = m")
    with caplog.at_level(logging.WARNING, logger="nxalembic_templates.settings"):
        assert settings.config_in(folder) == path
        assert settings.config_in(folder) == path
    # said once per file and process
    assert [r.getMessage() for r in caplog.records] == [
        f"{path} and [tool.nxalembic] in {pyproject} both configure nxalembic: using nxalembic.ini "
        "(delete one of them)"
    ]
    (folder / "pyproject.toml").unlink()
    caplog.clear()
    other = folder / "other"
    other.mkdir()
    ini(other, "[nxalembic]", "module = m")
    assert settings.config_in(other) == other / "nxalembic.ini"
    assert caplog.records == []
    # a pyproject.toml whose tool.nxalembic is no table: said, naming the file
    toml(other, '[tool]\nnxalembic = "m"\n')
    (other / "nxalembic.ini").unlink()
    with pytest.raises(NXAlembicError, match=r"pyproject\.toml: tool\.nxalembic must be a table"):
        settings.config_in(other)
    # a folder named nxalembic.ini is no settings file
    (folder / "dir").mkdir()
    (folder / "dir" / "nxalembic.ini").mkdir()
    assert settings.config_in(folder / "dir") is None


def test_settings_for_prefers_the_folder_of_alembic_ini(folder: Path) -> None:
    here = ini(folder, "[nxalembic]", "module = here")
    other = folder / "other"
    other.mkdir()
    alembic_ini = ini(other, "[alembic]", name="alembic.ini")
    # other/ has no settings: the current directory's
    assert settings.settings_for(alembic_ini) == here
    assert settings.settings_for(None) == here
    assert settings.settings_for("") == here
    theirs = ini(other, "[nxalembic]", "module = other")
    assert settings.settings_for(alembic_ini) == theirs
    assert settings.settings_for(str(alembic_ini)) == theirs
    assert settings.find_config_file(None, other) == theirs
    assert settings.find_config_file(folder / "nowhere", None) == here


def test_no_settings_anywhere(folder: Path) -> None:
    sub = folder / "sub"
    sub.mkdir()
    with pytest.raises(NXAlembicError) as error:
        settings.find_config_file(sub, sub, folder)
    assert str(error.value) == (
        f"no nxalembic.ini and no [tool.nxalembic] in pyproject.toml found (looked in {sub}, {folder}); "
        f"add 'module = yourbot.main' and 'bot = bot' under [nxalembic] in nxalembic.ini of {sub}, or run "
        "'nxalembic init --module yourbot.main', which writes them (yourbot.main: the module that creates "
        "your bot)"
    )
    # Alembic's settings in pyproject.toml (alembic init -t nxcog_pyproject): ours go there too, in TOML
    toml(sub, '[tool.alembic]\nscript_location = "%(here)s/migrations"\n')
    with pytest.raises(
        NXAlembicError,
        match=r"add 'module = \"yourbot.main\"' and 'bot = \"bot\"' under "
        r"\[tool.nxalembic\] in pyproject.toml of ",
    ):
        settings.find_config_file(sub)


def test_pyproject_for_is_beside_alembic_ini(folder: Path) -> None:
    assert settings.pyproject_for(folder / "a" / "alembic.ini") == folder / "a" / "pyproject.toml"
    assert settings.pyproject_for("alembic.ini") == folder / "pyproject.toml"


# -- version tables and folders --------------------------------------------------------------------


def test_version_table_for_and_back() -> None:
    found = settings.Settings(path=Path("/p/nxalembic.ini"), module="m", version_table="alembic.{cog}")
    assert found.version_table_for("music") == "alembic.music"
    assert found.version_table_cog("alembic.music") == "music"
    # the default pattern and stock Alembic's table count too
    assert found.version_table_cog("alembic_version_music") == "music"
    assert found.version_table_cog("alembic_version") == ""
    # any valid cog name, loaded or not; nothing else
    assert found.version_table_cog("alembic.not_loaded_2") == "not_loaded_2"
    assert found.version_table_cog("alembic.2x") is None
    assert found.version_table_cog("alembicxmusic") is None
    assert found.version_table_cog("alembic.music.x") is None
    assert found.version_table_cog("music_songs") is None
    twice = settings.Settings(path=Path("/p/nxalembic.ini"), module="m", version_table="v_{cog}_{cog}")
    assert twice.version_table_cog("v_a_a") == "a"
    assert twice.version_table_cog("v_a_b") is None
    assert twice.version_table_for("x") == "v_x_x"


def test_version_location_for(tmp_path: Path) -> None:
    def location(pattern: str) -> Path:
        found = settings.Settings(path=tmp_path / "nxalembic.ini", module="m", version_location=pattern)
        return found.version_location_for("music", tmp_path / "bot" / "music", tmp_path / "migrations")

    assert location("{script_location}/versions/{cog}") == tmp_path / "migrations" / "versions" / "music"
    assert location("{cog_dir}/migrations") == tmp_path / "bot" / "music" / "migrations"
    assert location("{here}/v/{cog}") == tmp_path / "v" / "music"
    # relative to the settings file, not the current directory
    assert location("revs/{cog}") == tmp_path / "revs" / "music"
    assert location("revs/../x/{cog}") == tmp_path / "x" / "music"


# -- alembic.ini read as Alembic reads it (the start-up fast path) -----------------------------------


def test_read_alembic_ini(folder: Path) -> None:
    path = ini(
        folder,
        "[alembic]",
        "script_location = %(here)s/migrations",
        "sqlalchemy.url = sqlite:///%(here)s/bot.db",
        name="alembic.ini",
    )
    found = settings.read_alembic_ini(path)
    assert found == settings.AlembicIni(folder / "migrations", f"sqlite:///{folder}/bot.db")
    ini(folder, "[alembic]", "script_location = migrations", "sourceless = false", name="alembic.ini")
    assert settings.read_alembic_ini(path) == settings.AlembicIni(folder / "migrations", None)


def test_read_alembic_ini_with_tool_alembic(folder: Path) -> None:
    path = ini(folder, "[alembic]", "sqlalchemy.url = sqlite://", name="alembic.ini")
    # no script_location at all: Alembic's route says why
    assert settings.read_alembic_ini(path) is None
    toml(folder, '[tool.alembic]\nscript_location = "%(here)s/mig"\n')
    assert settings.read_alembic_ini(path) == settings.AlembicIni(folder / "mig", "sqlite://")
    toml(folder, '[tool.alembic]\nscript_location = "%(here)s/mig"\nsourceless = true\n')
    assert settings.read_alembic_ini(path) is None
    toml(folder, '[tool.alembic]\nscript_location = "%(here)s/mig"\nsourceless = false\n')
    assert settings.read_alembic_ini(path) == settings.AlembicIni(folder / "mig", "sqlite://")
    # alembic.ini wins over [tool.alembic]
    ini(folder, "[alembic]", "script_location = %(here)s/own", "sourceless = false", name="alembic.ini")
    assert settings.read_alembic_ini(path) == settings.AlembicIni(folder / "own", None)
    # a location from alembic.ini, sourceless from the table
    ini(folder, "[alembic]", "script_location = %(here)s/own", name="alembic.ini")
    toml(folder, "[tool.alembic]\nsourceless = false\n")
    assert settings.read_alembic_ini(path) == settings.AlembicIni(folder / "own", None)
    toml(folder, "[tool.alembic]\nsourceless = true\n")
    assert settings.read_alembic_ini(path) is None
    toml(folder, '[tool.other]\nx = "y"\n')
    assert settings.read_alembic_ini(path) == settings.AlembicIni(folder / "own", None)


def test_a_complete_alembic_ini_needs_no_pyproject(folder: Path) -> None:
    path = ini(folder, "[alembic]", "script_location = m", "sourceless = false", name="alembic.ini")
    toml(folder, "[tool.alembic\n")  # broken, and not read
    assert settings.read_alembic_ini(path) == settings.AlembicIni(folder / "m", None)


def test_sourceless_of_alembic_ini_wins(folder: Path) -> None:
    path = ini(folder, "[alembic]", "sourceless = true", name="alembic.ini")
    toml(folder, '[tool.alembic]\nscript_location = "m"\nsourceless = false\n')
    assert settings.read_alembic_ini(path) is None


def test_a_pyproject_without_tool_tables(folder: Path) -> None:
    path = ini(folder, "[alembic]", "script_location = m", name="alembic.ini")
    toml(folder, '[project]\nname = "bot"\n')
    assert settings.read_alembic_ini(path) == settings.AlembicIni(folder / "m", None)


@pytest.mark.parametrize(
    "pyproject",
    [
        "[tool.alembic\n",  # not TOML
        '[tool.alembic]\nscript_location = "%(nothere)s/mig"\n',  # a key % fails
        '[tool.alembic]\nscript_location = "%(here)d"\n',  # a format % fails
        '[tool.alembic]\nscript_location = "100%"\n',
        'tool = "x"\n',
        "[tool]\nalembic = 1\n",
        "[tool.alembic]\nscript_location = 1\n",
    ],
)
def test_read_alembic_ini_leaves_what_it_cannot_read_to_alembic(folder: Path, pyproject: str) -> None:
    path = ini(folder, "[alembic]", name="alembic.ini")
    toml(folder, pyproject)
    assert settings.read_alembic_ini(path) is None


@pytest.mark.parametrize(
    "lines",
    [
        ["[alembic]", "script_location = mypackage:migrations", "sourceless = false"],
        ["[alembic]", "script_location = m", "sourceless = true"],
        ["[alembic]", "script_location = %(nope)s/m"],
        ["script_location = m"],
        ["[alembic]", "script_location = m", "script_location = n"],
    ],
)
def test_read_alembic_ini_unsure(folder: Path, lines: list[str]) -> None:
    path = ini(folder, *lines, name="alembic.ini")
    toml(folder, "[tool.alembic]\nsourceless = false\n")
    assert settings.read_alembic_ini(path) is None


def test_read_alembic_ini_undecodable_or_missing(folder: Path) -> None:
    path = folder / "alembic.ini"
    path.write_bytes(b"[alembic]\nscript_location = caf\xe9\n")
    assert settings.read_alembic_ini(path) is None
    # a missing file reads as empty: no script_location, no [tool.alembic]
    assert settings.read_alembic_ini(folder / "missing.ini") is None


def test_read_alembic_ini_absolute_windows_like_location(folder: Path) -> None:
    # an absolute path with ':' is a path, not a package resource
    path = ini(
        folder, "[alembic]", f"script_location = {folder}/a:b", "sourceless = false", name="alembic.ini"
    )
    assert settings.read_alembic_ini(path) == settings.AlembicIni(folder / "a:b", None)


def test_toml_type_names() -> None:
    assert settings._toml_type(True) == "a boolean"
    assert settings._toml_type(3) == "an integer"
    assert settings._toml_type(1.0) == "a float"
    assert settings._toml_type([]) == "an array"
    assert settings._toml_type({}) == "a table"
    assert settings._toml_type("x") == "a string"
    assert settings._toml_type(object()) == "a date or time"
