"""The wheel carries the vector suite: installed outside the checkout, the harness runs on it with
no ``--vectors``, and ``addcow-vectors extract`` writes it out byte-identical.

The wheel is built from this tree and installed with ``--no-deps`` into a fresh venv in a
temporary directory; its dependencies come from links to the running interpreter's
site-packages without addcow's own packages and ``.pth`` hooks, on ``PYTHONPATH``, so every
``addcow_conformance`` import in the venv is the wheel's. That keeps the test offline and
independent of a package index.
"""

from __future__ import annotations

import filecmp
import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from addcow_conformance.harness.cli import main as harness_main
from addcow_conformance.packaged import (
    PACKAGED_NAME,
    checkout_vectors_dir,
    default_vectors_dir,
    extract_suite,
    packaged_vectors_dir,
    suite_files,
)

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "vectors"

pytestmark = pytest.mark.skipif(not (VECTORS / "manifest.json").is_file(),
                                reason="vectors/manifest.json not generated yet")


def _same_tree(a: Path, b: Path) -> list[str]:
    """Differences between two directory trees, by name and bytes."""
    problems = []
    files_a = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    if files_a != files_b:
        problems.append(f"file lists differ: {sorted(set(files_a) ^ set(files_b))[:10]}")
    for name in set(files_a) & set(files_b):
        if not filecmp.cmp(a / name, b / name, shallow=False):
            problems.append(f"{name}: bytes differ")
    return problems


def test_the_default_suite_is_the_checkouts_or_else_the_packaged_one() -> None:
    """Run from the checkout (an editable install), its vectors/ wins; installed from a wheel
    (as tox runs the tests), the kit finds no checkout and uses the suite it carries."""
    import addcow_conformance

    if Path(addcow_conformance.__file__).resolve().parents[2] == ROOT:
        assert checkout_vectors_dir() == VECTORS.resolve()
        assert default_vectors_dir() == VECTORS.resolve()
    else:
        assert checkout_vectors_dir() is None
        packaged = packaged_vectors_dir()
        assert packaged is not None
        assert default_vectors_dir() == packaged
        assert _same_tree(packaged, VECTORS) == []


def test_extract_writes_the_suite_byte_identical(tmp_path: Path) -> None:
    names = extract_suite(VECTORS, tmp_path / "out")
    assert "SHA256SUMS" in names
    assert "manifest.json" in names
    assert _same_tree(tmp_path / "out", VECTORS) == []
    with pytest.raises(FileExistsError):
        extract_suite(VECTORS, tmp_path / "out")


def test_suite_files_are_what_sha256sums_lists(tmp_path: Path) -> None:
    (tmp_path / "SHA256SUMS").write_text("0" * 64 + "  a.txt\n" + "1" * 64 + "  ./b/c\n")
    assert suite_files(tmp_path) == ["a.txt", "b/c", "SHA256SUMS"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("hatchling")
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                           "--no-build-isolation", "-w", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    [built] = out.glob("addcow-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv outside the checkout with only the wheel installed."""
    env_dir = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True,
                   timeout=120)
    python = env_dir / "bin" / "python"
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                           "-q", "--no-deps", "--no-index", str(wheel)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    return env_dir


_DEPS: list[Path] = []


def _dependencies_only() -> Path:
    """A directory of links to every entry of this interpreter's site-packages except addcow's
    own packages and ``.pth`` hooks: the dependencies, whether addcow is installed here as an
    editable hook or (as under tox) as a wheel whose packages would otherwise leak in."""
    if not _DEPS:
        import tempfile

        purelib = Path(sysconfig.get_paths()["purelib"])
        out = Path(tempfile.mkdtemp(prefix="addcow-deps-"))
        for entry in purelib.iterdir():
            name = entry.name
            if (name in ("addcow_ref", "addcow_conformance") or name.endswith(".pth")
                    or (name.startswith("addcow-") and name.endswith(".dist-info"))):
                continue
            (out / name).symlink_to(entry)
        _DEPS.append(out)
    return _DEPS[0]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADDCOW_")}
    env["PYTHONPATH"] = str(_dependencies_only())
    return env


def _run(venv: Path, cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin" / argv[0]), *argv[1:]], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=600, check=False)


def test_wheel_holds_the_suite_under_the_kit(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        packaged = {n.removeprefix(f"addcow_conformance/{PACKAGED_NAME}/")
                    for n in z.namelist() if n.startswith(f"addcow_conformance/{PACKAGED_NAME}/")}
    assert packaged == set(suite_files(VECTORS))


def _outcomes(results: Path) -> list[tuple[str, str, str]]:
    doc = json.loads(results.read_text("utf-8"))
    return sorted((r["id"], r["capability"], r["outcome"]) for r in doc["results"])


def _installed_run_matches_checkout_run(venv: Path, tmp_path: Path, *select: str) -> None:
    """The installed harness over the packaged suite gives, check for check, the outcomes the
    checkout's harness gives over ``vectors/`` (not a fixed count: vectors for a newer spec
    version may not pass the reference yet)."""
    site = Path(_run(venv, tmp_path, "python", "-c",
                     "import addcow_conformance as k; print(k.__file__)").stdout.strip())
    assert str(venv) in str(site), f"the kit was imported from {site}, not the venv"
    impl = "python:addcow_conformance.adapters.reference:main"
    proc = _run(venv, tmp_path, "addcow-conformance", "run", "--impl", impl,
                "--report-json", "installed.json", *select)
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-2000:]
    first = proc.stdout.splitlines()[0]
    assert f"/addcow_conformance/{PACKAGED_NAME} (suite " in first, first
    assert str(venv) in first
    checkout = tmp_path / "checkout.json"
    status = harness_main(["run", "--impl", impl, "--vectors", str(VECTORS),
                           "--report-json", str(checkout), "--output", "json", *select])
    assert status == proc.returncode
    installed = _outcomes(tmp_path / "installed.json")
    assert installed, "nothing was run"
    assert installed == _outcomes(checkout)


def test_installed_harness_runs_the_packaged_suite(venv: Path, tmp_path: Path) -> None:
    _installed_run_matches_checkout_run(venv, tmp_path, "--run", "header/*", "--run", "chains/*",
                                        "--run", "ops/write-s*")


@pytest.mark.slow
def test_installed_harness_runs_every_packaged_vector(venv: Path, tmp_path: Path) -> None:
    _installed_run_matches_checkout_run(venv, tmp_path)


def test_installed_extract_writes_the_committed_suite(venv: Path, tmp_path: Path) -> None:
    proc = _run(venv, tmp_path, "addcow-vectors", "extract", "suite")
    assert proc.returncode == 0, proc.stderr
    assert _same_tree(tmp_path / "suite", VECTORS) == []
    again = _run(venv, tmp_path, "addcow-vectors", "extract", "suite")
    assert again.returncode == 1
    assert "exists and is not an empty directory" in again.stderr


def test_installed_explain_is_offline_and_cites_packaged_vectors(venv: Path,
                                                                 tmp_path: Path) -> None:
    proc = _run(venv, tmp_path, "addcow-check", "--explain", "HDR-MAGIC")
    assert proc.returncode == 0, proc.stderr
    assert "Broken by:" in proc.stdout
    assert "header/magic-qcow2" in proc.stdout
    assert f"{PACKAGED_NAME}" in proc.stdout
