"""The offline bundle: every wheel Enclave needs, next to the project, in one checked archive.

``make bundle`` runs ``build`` on a connected machine (same OS and Python as the target) once
``make install`` has filled ``.venv``; ``make verify-bundle`` runs ``verify`` in an unpacked
bundle before anything is installed from it. Standard library only: ``verify`` runs with the
system's Python, before any virtual environment exists.

An archive ``dist/enclave-VERSION-PLATFORM.tar.gz`` unpacks into ``enclave-VERSION/``:

- the project (the files git tracks), with its Makefile, which installs from ``wheels/`` alone
  when that folder is there;
- ``wheels/``: every wheel, at the versions installed in the ``.venv`` it was built from
  (so the bundle carries what ``make test`` ran there), the models' packages among them;
- ``LICENSES.md`` and ``licenses/``: each carried package's licence and notice texts (pip-licenses);
- ``BUNDLE.json``: version, platform, Python, git commit, sizes;
- ``SHA256SUMS`` (``sha256sum`` format, last member): the SHA-256 of every other file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "SHA256SUMS"
WHEELS = "wheels"
INFO = "BUNDLE.json"
CHUNK = 1 << 20


class BundleError(Exception):
    """A bundle could not be built, or an unpacked one does not match its manifest."""


def canonical(name: str) -> str:
    """A project name as PEP 503 compares them (``llama_cpp_python`` -> ``llama-cpp-python``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def platform_tag() -> str:
    """``linux_x86_64-cp311``: the machines whose wheels the bundle carries (wheels are per OS, CPU and Python)."""
    return f"{sysconfig.get_platform().replace('-', '_')}-cp{sys.version_info.major}{sys.version_info.minor}"


def wheel_project(path: Path) -> tuple[str, str]:
    """(canonical name, version) from a wheel's file name (``name-version-...-tags.whl``)."""
    name, version = path.name.split("-")[:2]
    return canonical(name), version


# --- building ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildPlan:
    """What ``make bundle`` asks for; the pins come from the Makefile, so install and bundle agree."""

    root: Path
    out_dir: Path
    requirements: list[str]  # resolved with their dependencies
    no_deps: list[str]  # taken alone (the models' packages that carry only a file)
    find_links: list[str]  # where the locally built wheels are (llama-cpp-python)


def run(command: list[str], cwd: Path) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise BundleError(f"{' '.join(command[:3])} ... failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return done.stdout


def project_files(root: Path) -> list[str]:
    """The files git tracks (as they are on disk), relative to the project root."""
    listed = run(["git", "ls-files", "-z"], root).split("\0")
    return sorted(name for name in listed if name and (root / name).is_file())


def installed_pins(root: Path, exclude: set[str]) -> str:
    """The ``.venv``'s versions as pip constraints, so the bundle carries exactly what was installed and tested."""
    frozen = run([sys.executable, "-m", "pip", "list", "--format=freeze", "--exclude-editable"], root)
    return "".join(f"{line}\n" for line in frozen.splitlines() if canonical(line.split("==")[0]) not in exclude)


def collect_wheels(plan: BuildPlan, wheel_dir: Path) -> list[Path]:
    """``pip wheel`` every requirement (and dependency) into ``wheel_dir``, pinned to the installed versions."""
    constraints = wheel_dir.parent / "constraints.txt"
    constraints.write_text(installed_pins(plan.root, {"enclave", "llama-cpp-python"}), encoding="utf-8")
    pyproject = tomllib.loads((plan.root / "pyproject.toml").read_text(encoding="utf-8"))
    # pip itself (the Makefile upgrades it first) and what builds the project's editable install (setuptools).
    tools = ["pip", *pyproject["build-system"]["requires"]]
    pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--prefer-binary", "--wheel-dir", str(wheel_dir),
           *(f"--find-links={link}" for link in plan.find_links)]
    run([*pip, "--constraint", str(constraints), *tools, *plan.requirements], plan.root)
    if plan.no_deps:
        run([*pip, "--no-deps", *plan.no_deps], plan.root)
    for own in wheel_dir.glob("enclave-*.whl"):
        own.unlink()  # the project travels as source, installed editable like a clone
    return sorted(wheel_dir.glob("*.whl"))


def licence_rows(wheels: list[Path], root: Path) -> list[dict[str, str]]:
    """pip-licenses' record (licence, URL, licence and notice texts) of every carried wheel, read from ``.venv``."""
    pip_licenses = Path(sys.executable).parent / "pip-licenses"
    report = run([str(pip_licenses), "--with-system", "--from=mixed", "--with-urls", "--with-license-file",
                  "--with-notice-file", "--no-license-path", "--format=json"], root)
    found = {canonical(row["Name"]): row for row in json.loads(report)}
    rows, missing = [], []
    for wheel in wheels:
        name, version = wheel_project(wheel)
        row = found.get(name)
        if row is None or row["Version"] != version:
            missing.append(f"{name} {version} (installed: {row['Version'] if row else 'no'})")
        else:
            rows.append(row)
    if missing:
        raise BundleError("these wheels are not what .venv has installed, so their licences cannot be read "
                          "(run `make install` first): " + ", ".join(missing))
    return rows


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip() or "-"


def write_licences(rows: list[dict[str, str]], target: Path, version: str) -> None:
    """``LICENSES.md`` (one table) and ``licenses/NAME-VERSION.txt`` (each package's own texts)."""
    folder = target / "licenses"
    folder.mkdir()
    lines = [f"# Licences of what Enclave {version}'s bundle carries", "",
             "Read from each package's metadata by pip-licenses; the full texts are in `licenses/`.", "",
             "| package | version | licence | home page | texts |", "|---|---|---|---|---|"]
    for row in rows:
        texts = [row.get("LicenseText", ""), row.get("NoticeText", "")]
        texts = [text for text in texts if text and text != "UNKNOWN"]
        name = f"{canonical(row['Name'])}-{row['Version']}.txt"
        if texts:
            (folder / name).write_text("\n\n".join(texts) + "\n", encoding="utf-8")
        lines.append(f"| {cell(row['Name'])} | {cell(row['Version'])} | {cell(row['License'])} | "
                     f"{cell(row['URL'])} | {f'`licenses/{name}`' if texts else 'none shipped'} |")
    (target / "LICENSES.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def members(root: Path, files: list[str], scratch: Path, wheels: list[Path]) -> Iterator[tuple[Path, str]]:
    """(file on disk, path inside the bundle) for everything but the manifest."""
    yield from ((root / name, name) for name in files)
    yield from ((wheel, f"{WHEELS}/{wheel.name}") for wheel in wheels)
    for extra in sorted(path for path in (scratch / "extra").rglob("*") if path.is_file()):
        yield extra, extra.relative_to(scratch / "extra").as_posix()


def write_archive(target: Path, top: str, entries: Iterable[tuple[Path, str]]) -> int:
    """Write the gzip'd tar (``SHA256SUMS`` last) through ``TARGET.partial``; returns the number of files."""
    partial = target.with_name(target.name + ".partial")
    sums = []
    with tarfile.open(partial, "w:gz", compresslevel=1) as archive:  # wheels are compressed already
        for path, name in entries:
            sums.append(f"{sha256(path)}  {name}\n")
            archive.add(path, arcname=f"{top}/{name}", recursive=False)
        manifest = partial.with_name(MANIFEST)
        manifest.write_text("".join(sums), encoding="utf-8")
        archive.add(manifest, arcname=f"{top}/{MANIFEST}")
        manifest.unlink()
    partial.replace(target)
    return len(sums)


def build(plan: BuildPlan) -> Path:
    """Collect, describe and pack; returns the archive's path."""
    if not (plan.root / ".git").exists():
        raise BundleError(f"{plan.root} is not a git checkout: a bundle is built from a clone, on a connected machine")
    version = tomllib.loads((plan.root / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    files = project_files(plan.root)
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    target = plan.out_dir / f"enclave-{version}-{platform_tag()}.tar.gz"
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=".bundle-", dir=plan.out_dir) as scratch_name:
        scratch = Path(scratch_name)
        (scratch / "wheels").mkdir()
        wheels = collect_wheels(plan, scratch / "wheels")
        (scratch / "extra").mkdir()
        write_licences(licence_rows(wheels, plan.root), scratch / "extra", version)
        commit = run(["git", "describe", "--always", "--dirty", "--abbrev=12"], plan.root).strip()
        info = {"name": "enclave", "version": version, "platform": platform_tag(), "python": sys.version.split()[0],
                "commit": commit, "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "wheels": len(wheels), "wheel_bytes": sum(wheel.stat().st_size for wheel in wheels)}
        (scratch / "extra" / INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        count = write_archive(target, f"enclave-{version}", members(plan.root, files, scratch, wheels))
    print(f"{target}: {count} files, {len(wheels)} wheels, {target.stat().st_size / 2**20:.0f} MiB, "
          f"built in {time.monotonic() - started:.0f} s")
    return target


# --- verifying --------------------------------------------------------------------------------------------


def read_manifest(bundle: Path) -> dict[str, str]:
    manifest = bundle / MANIFEST
    if not manifest.is_file():
        raise BundleError(f"{manifest} is missing: this is not an unpacked bundle")
    expected = {}
    for line in manifest.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        expected[name] = digest
    return expected


def verify(bundle: Path) -> list[str]:
    """Every file the manifest names, hashed; returns one line per problem (empty when the bundle is intact).

    A wheel in ``wheels/`` that the manifest does not name is a problem too: pip would install it.
    """
    expected = read_manifest(bundle)
    problems = []
    for name, digest in expected.items():
        path = bundle / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256(path) != digest:
            problems.append(f"{name}: SHA-256 does not match the manifest")
    problems += [f"{path.relative_to(bundle).as_posix()}: not in the manifest"
                 for path in sorted((bundle / WHEELS).glob("*"))
                 if path.relative_to(bundle).as_posix() not in expected]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("build", help="collect the wheels and write dist/enclave-VERSION-PLATFORM.tar.gz")
    make.add_argument("requirements", nargs="+", help="requirements resolved with their dependencies")
    make.add_argument("--no-deps", action="append", default=[], help="a requirement taken without dependencies")
    make.add_argument("--find-links", action="append", default=[], help="a folder of locally built wheels")
    make.add_argument("--out", type=Path, default=Path("dist"))
    check = commands.add_parser("verify", help="check every file of an unpacked bundle against SHA256SUMS")
    check.add_argument("bundle", type=Path, nargs="?", default=Path("."))
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            root = Path.cwd()
            build(BuildPlan(root, args.out.resolve(), args.requirements, args.no_deps, args.find_links))
            return 0
        problems = verify(args.bundle)
    except BundleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} of {len(read_manifest(args.bundle))} files do not match "
              f"{args.bundle / MANIFEST}: do not install from this copy", file=sys.stderr)
        return 1
    print(f"all {len(read_manifest(args.bundle))} files match {args.bundle / MANIFEST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
