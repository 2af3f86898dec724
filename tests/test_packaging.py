"""A non-editable `pip install .` works from anywhere: the schema travels with the package."""

from __future__ import annotations

import importlib.util
import shutil
import site
import subprocess
import sys
import sysconfig
import venv
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
#: What a source distribution of the project holds (tests, configs and CI files are not shipped).
SHIPPED = ["pyproject.toml", "README.md", "routing", "fake_servers", "schemas"]


def _can_build_wheels_here() -> bool:
    """True when the setuptools here can build a wheel without fetching anything."""
    try:
        found = metadata.version("setuptools")
    except metadata.PackageNotFoundError:
        return False
    version = tuple(int(p) for p in found.split(".")[:2] if p.isdigit())
    return version >= (70, 1) or importlib.util.find_spec("wheel") is not None


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, f"{args}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the project pip-installed (not editable) from a copy of its files.

    To stay fast and offline, the venv has no pip of its own and no network: a ``.pth``
    file lets it import the test environment's packages (pip, setuptools, the runtime
    deps) as plain path entries. Plain entries do not run the ``.pth`` files in there,
    so the dev environment's editable install of ``routing`` stays invisible.
    """
    tmp = tmp_path_factory.mktemp("packaging")
    source = tmp / "src"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SHIPPED:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=False, symlinks=sys.platform != "win32")
    python = env_dir / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    purelib = Path(
        _run(
            python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp
        ).stdout.strip()
    )
    ours = {sysconfig.get_paths()["purelib"], *site.getsitepackages()}
    (purelib / "_dev_site_packages.pth").write_text("\n".join(sorted(ours)) + "\n")
    # Without isolation pip builds with the setuptools we have, offline: that needs a
    # setuptools that makes wheels itself (>= 70.1) or the `wheel` package. Else pip
    # fetches the build requirements of pyproject.toml, as a user's `pip install .` does.
    offline = _can_build_wheels_here()
    flags = ["--no-build-isolation", "--no-index"] if offline else []
    _run(
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--disable-pip-version-check",
        *flags,
        str(source),
        cwd=tmp,
    )
    return env_dir


def test_installed_console_script_validates_from_elsewhere(installed: Path, tmp_path: Path) -> None:
    """`routing validate configs/agentos.yaml` run from another directory prints ok."""
    script = installed / ("Scripts/routing.exe" if sys.platform == "win32" else "bin/routing")
    config = ROOT / "configs" / "agentos.yaml"
    proc = _run(script, "validate", config, cwd=tmp_path)
    assert proc.stdout == f"{config}: ok\n"


def test_installed_package_is_not_the_repo(installed: Path, tmp_path: Path) -> None:
    """The venv imports routing from its own site-packages, with the schema inside it."""
    python = installed / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    code = (
        "import routing, sysconfig, pathlib; "
        "print(pathlib.Path(routing.__file__).resolve().parent); "
        "print(pathlib.Path(sysconfig.get_paths()['purelib']).resolve())"
    )
    package, purelib = _run(python, "-c", code, cwd=tmp_path).stdout.splitlines()
    assert Path(package) == Path(purelib) / "routing"
    assert not Path(package).is_relative_to(ROOT)
    assert (Path(package) / "schemas" / "routing.schema.json").is_file()
    assert (Path(package) / "py.typed").is_file()
    assert (Path(purelib) / "fake_servers" / "__init__.py").is_file()


def test_installed_bad_config_exit_code(installed: Path, tmp_path: Path) -> None:
    """The installed script reports a bad config located, exit 2, no traceback."""
    script = installed / ("Scripts/routing.exe" if sys.platform == "win32" else "bin/routing")
    bad = ROOT / "tests" / "config" / "bad" / "port_too_large.yaml"
    proc = subprocess.run(
        [str(script), "validate", str(bad)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout.startswith(f"{bad}:6:23: $.providers.ollama.instances.default.port: ")
    assert "Traceback" not in proc.stderr
