"""The distributions as they would be published: built by the real ``python -m build``.

The license text must be in the sdist and in the wheel, and the wheel must carry the
``nxcog`` template where stock Alembic looks for it.  ``.ci/check_dist.py`` (what
``make dist`` runs) must pass on them, and must fail, in one line, on a wheel without the
template.  An editable install (``make install``) must place no copy of the templates there:
it would go stale as the source changes.  The builds use this environment's hatchling
(``--no-isolation``) to stay fast; ``make dist`` builds in isolated environments, as a release does.
"""

from __future__ import annotations

import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, run

CHECK_DIST = str(REPO / ".ci" / "check_dist.py")
TEMPLATE = ("env.py", "script.py.mako", "alembic.ini.mako", "README")


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run(
        [
            sys.executable,
            "-m",
            "build",
            "--no-isolation",
            "--sdist",
            "--wheel",
            "--outdir",
            str(out),
            str(REPO),
        ],
        cwd=out,
    )
    return out


def test_license_is_in_the_sdist_and_the_wheel(dist: Path) -> None:
    license_text = (REPO / "LICENSE").read_bytes()
    assert license_text.startswith(b"MIT License")
    [wheel] = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        [license_file] = [n for n in archive.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
        assert archive.read(license_file) == license_text
        assert (
            "License-File: LICENSE"
            in archive.read(license_file.replace("licenses/LICENSE", "METADATA")).decode()
        )
    [sdist] = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        member = archive.extractfile(f"{sdist.name.removesuffix('.tar.gz')}/LICENSE")
        assert member is not None and member.read() == license_text


def test_the_wheel_installs_the_template_where_alembic_looks(dist: Path) -> None:
    [wheel] = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        for name in TEMPLATE:
            assert (
                archive.read(f"alembic/templates/nxcog/{name}")
                == (REPO / "nxalembic_templates" / "percog" / name).read_bytes()
            ), name


def test_check_dist_passes_on_the_built_files(dist: Path) -> None:
    result = run([sys.executable, CHECK_DIST, "--no-isolation", str(dist)], cwd=dist)
    lines = result.stdout.splitlines()
    assert len(lines) == 5 and all(line.startswith("ok: ") for line in lines), result.output
    assert "a wheel built from the sdist has the same" in lines[-1]


def test_check_dist_refuses_a_wheel_without_the_template(dist: Path, tmp_path: Path) -> None:
    [wheel] = dist.glob("*.whl")
    [sdist] = dist.glob("*.tar.gz")
    (tmp_path / sdist.name).write_bytes(sdist.read_bytes())
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(tmp_path / wheel.name, "w") as broken:
        for item in source.infolist():
            if not item.filename.startswith("alembic/templates/"):
                broken.writestr(item, source.read(item))
    result = run([sys.executable, CHECK_DIST, "--no-isolation", str(tmp_path)], cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "dist check failed: the wheel has no alembic/templates/nxcog/env.py: "
        "stock 'alembic init -t nxcog' would not find the template"
    ]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("editable", [False, True], ids=["wheel", "editable"])
def test_an_editable_install_places_no_template_copy(tmp_path: Path, editable: bool) -> None:
    """``pip install -e .`` (make install) leaves Alembic's templates/ alone; ``pip install .`` fills it.

    Installed with ``--target`` into a folder of its own (this environment's install is left as
    it is); the editable install imports the package from this checkout.
    """
    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    run([*pip, "--target", str(target), *(["-e"] if editable else []), str(REPO)], cwd=tmp_path)
    templates = target / "alembic" / "templates"
    if not editable:  # the control: the same command without -e installs the templates
        assert sorted(p.name for p in templates.iterdir()) == ["nxcog", "nxcog_pyproject"]
        assert (templates / "nxcog" / "env.py").read_bytes() == (
            REPO / "nxalembic_templates" / "percog" / "env.py"
        ).read_bytes()
        return
    assert not (target / "alembic").exists(), sorted(p.relative_to(target) for p in target.rglob("*"))
    [record] = target.glob("nxalembic_templates-*.dist-info/RECORD")
    assert "alembic/" not in record.read_text()
    # the package as the target folder alone finds it (-S: without this environment's site-packages)
    find = "import importlib.util as u; print(u.find_spec('nxalembic_templates').origin)"
    found = run(
        [sys.executable, "-S", "-P", "-c", f"import site; site.addsitedir({str(target)!r}); {find}"],
        cwd=tmp_path,
    )
    assert Path(found.stdout.strip()) == REPO / "nxalembic_templates" / "__init__.py"
