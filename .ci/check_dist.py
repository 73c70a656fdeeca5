"""Check the built distributions before they are published (``make dist`` runs it).

Usage: ``python .ci/check_dist.py [--no-isolation] DIST_DIR``, where DIST_DIR holds one sdist
and one wheel.  What a user would otherwise find out after ``pip install``:

* ``twine check --strict`` accepts both (metadata, README rendering);
* the wheel installs the ``nxcog`` and ``nxcog_pyproject`` templates where stock Alembic looks
  for templates (``alembic/templates/<name>/``), the same bytes as ``nxalembic_templates/percog/``
  and ``percog_pyproject/``;
* the license text is in both files, and the version in their names is ``__version__``;
* a wheel built from the sdist has the same members with the same content as the wheel
  built from the checkout: the sdist leaves nothing out that the wheel needs.

One line per check; the first failure ends the run with exit code 1.  ``--no-isolation``
builds the second wheel with the build backend installed in this environment (fast; the
test suite uses it) instead of a fresh isolated one (what ``make dist`` does).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Each template: its source folder, and where the wheel puts it (inside Alembic's own
#: templates folder, where ``alembic init -t NAME`` looks), with the files it must hold.
TEMPLATES = {
    "nxcog": ("percog", ("env.py", "script.py.mako", "alembic.ini.mako", "README")),
    "nxcog_pyproject": (
        "percog_pyproject",
        ("env.py", "script.py.mako", "alembic.ini.mako", "pyproject.toml.mako", "README"),
    ),
}


class DistError(Exception):
    """A check failed; the message says which and what was found."""


def version_in_source() -> str:
    """``__version__`` as written in the package, the one place the version lives."""
    text = (REPO / "nxalembic_templates" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"$', text, re.M)
    if match is None:
        raise DistError('no __version__ = "..." line in nxalembic_templates/__init__.py')
    return match[1]


def only(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        raise DistError(f"expected one {pattern} in {folder}, found {[p.name for p in found] or 'none'}")
    return found[0]


def wheel_members(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as archive:
        return {name: archive.read(name) for name in archive.namelist() if not name.endswith("/")}


def sdist_members(sdist: Path) -> dict[str, bytes]:
    members: dict[str, bytes] = {}
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            handle = archive.extractfile(member) if member.isfile() else None
            if handle is not None:
                members[member.name] = handle.read()
    return members


def check_twine(sdist: Path, wheel: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(sdist), str(wheel)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise DistError(f"twine check --strict failed:\n{result.stdout}{result.stderr}")


def check_versions(sdist: Path, wheel: Path) -> str:
    version = version_in_source()
    if not wheel.name.startswith(f"nxalembic_templates-{version}-"):
        raise DistError(f"the wheel {wheel.name} is not version {version} (nxalembic_templates.__version__)")
    if sdist.name != f"nxalembic_templates-{version}.tar.gz":
        raise DistError(f"the sdist {sdist.name} is not version {version} (nxalembic_templates.__version__)")
    return version


def check_wheel(members: dict[str, bytes], license_text: bytes) -> None:
    for template, (folder, files) in TEMPLATES.items():
        for name in files:
            path = f"alembic/templates/{template}/{name}"
            if path not in members:
                raise DistError(
                    f"the wheel has no {path}: stock 'alembic init -t {template}' would not find the template"
                )
            source = REPO / "nxalembic_templates" / folder / name  # env.py: a link into percog/
            if members[path] != source.read_bytes():
                raise DistError(f"the wheel's {path} differs from nxalembic_templates/{folder}/{name}")
    licenses = [name for name in members if re.fullmatch(r"[^/]+\.dist-info/licenses/LICENSE", name)]
    if not licenses:
        raise DistError("the wheel has no *.dist-info/licenses/LICENSE")
    if members[licenses[0]] != license_text:
        raise DistError(f"the wheel's {licenses[0]} differs from LICENSE")


def check_sdist(members: dict[str, bytes], license_text: bytes, version: str) -> None:
    root = f"nxalembic_templates-{version}"
    for name in ("LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml"):
        if f"{root}/{name}" not in members:
            raise DistError(f"the sdist has no {root}/{name}")
    if members[f"{root}/LICENSE"] != license_text:
        raise DistError("the sdist's LICENSE differs from LICENSE")


def digests(members: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in members.items()}


def check_rebuilt_wheel(sdist: Path, wheel: Path, isolation: bool) -> int:
    """Build a wheel from the sdist and compare it with *wheel*, member by member."""
    with tempfile.TemporaryDirectory(prefix="nxalembic-dist-") as out:
        command = [sys.executable, "-m", "build", "--wheel", "--outdir", out, str(sdist)]
        if not isolation:
            command.insert(3, "--no-isolation")
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise DistError(f"building a wheel from {sdist.name} failed:\n{result.stdout}{result.stderr}")
        rebuilt = digests(wheel_members(only(Path(out), "*.whl")))
    original = digests(wheel_members(wheel))
    if rebuilt != original:
        missing = sorted(original.keys() - rebuilt.keys())
        extra = sorted(rebuilt.keys() - original.keys())
        changed = sorted(n for n in original.keys() & rebuilt.keys() if original[n] != rebuilt[n])
        raise DistError(
            f"the wheel built from {sdist.name} differs from {wheel.name}: "
            f"missing {missing}, extra {extra}, different content {changed}"
        )
    return len(original)


def check(dist: Path, isolation: bool) -> None:
    sdist, wheel = only(dist, "*.tar.gz"), only(dist, "*.whl")
    license_text = (REPO / "LICENSE").read_bytes()
    check_twine(sdist, wheel)
    print(f"ok: twine check --strict {sdist.name} {wheel.name}")
    version = check_versions(sdist, wheel)
    print(f"ok: both are version {version}, as nxalembic_templates.__version__ says")
    check_wheel(wheel_members(wheel), license_text)
    listed = "; ".join(f"alembic/templates/{t}/ ({', '.join(files)})" for t, (_, files) in TEMPLATES.items())
    print(f"ok: the wheel has LICENSE and the templates under {listed}")
    check_sdist(sdist_members(sdist), license_text, version)
    print("ok: the sdist has LICENSE, CHANGELOG.md, README.md and pyproject.toml")
    count = check_rebuilt_wheel(sdist, wheel, isolation)
    print(f"ok: a wheel built from the sdist has the same {count} members with the same content")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dist", type=Path, help="the folder with one sdist and one wheel")
    parser.add_argument(
        "--no-isolation", action="store_true", help="build the second wheel without isolation"
    )
    args = parser.parse_args(argv)
    try:
        check(args.dist, isolation=not args.no_isolation)
    except DistError as exc:
        print(f"dist check failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
