"""The dependency locks (docs/decisions/0006-dependency-locks.md).

Every package that `make setup` installs or a Lambda layer ships is pinned with == and hashes,
and a package in both a layer's lock and the dev lock has the same version in both: the layers
ship what the tests ran against.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DEV_LOCK = ROOT / "requirements" / "dev.lock"
LAYERS = ROOT / "layers"
LAYER_LOCKS = sorted(LAYERS.glob("*/requirements*.txt"))


def logical_lines(text: str) -> list[str]:
    """The lock's lines with comments dropped and backslash continuations joined."""
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip():
            lines.append(current.strip())
        current = ""
    if current.strip():
        lines.append(current.strip())
    return lines


def parse_lock(text: str) -> tuple[dict[str, str], list[str]]:
    """{canonical name: pinned version} and what is wrong with the lock (empty if nothing).

    Wrong: a line that is not a requirement (-e, -r, an index option), a requirement without
    exactly one `==` pin, one without a `--hash`, a package listed twice, or no package at all.
    """
    pins: dict[str, str] = {}
    problems: list[str] = []
    for line in logical_lines(text):
        words = line.split()
        hashes = [w for w in words if w.startswith("--hash=")]
        spec = " ".join(w for w in words if not w.startswith("--hash="))
        if spec.startswith("-"):
            problems.append(f"{spec!r}: not a pinned requirement")
            continue
        try:
            req = Requirement(spec)
        except InvalidRequirement as exc:
            problems.append(f"{spec!r}: {exc}")
            continue
        name = canonicalize_name(req.name)
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator != "==" or "*" in specs[0].version:
            problems.append(f"{name}: not pinned with == ({spec!r})")
        elif name in pins:
            problems.append(f"{name}: listed twice")
        else:
            pins[name] = specs[0].version
        if not hashes:
            problems.append(f"{name}: no --hash")
    if not pins and not problems:
        problems.append("no requirements")
    return pins, problems


def version_mismatches(layer: dict[str, str], dev: dict[str, str]) -> list[str]:
    return [
        f"{name}: layer {version}, dev lock {dev[name]}"
        for name, version in sorted(layer.items())
        if name in dev and dev[name] != version
    ]


def dev_lock() -> dict[str, str]:
    pins, problems = parse_lock(DEV_LOCK.read_text())
    assert problems == []
    return pins


def direct_names(path: Path) -> set[str]:
    """The package names a requirements*.in asks for."""
    return {canonicalize_name(Requirement(line).name) for line in logical_lines(path.read_text())}


def layer_id(path: Path) -> str:
    return str(path.relative_to(LAYERS))


# ---------------------------------------------------------------- the checker itself


GOOD = """\
# comment
numpy==2.4.6 \\
    --hash=sha256:aaaa \\
    --hash=sha256:bbbb
    # via -r requirements.in
aws-lambda-powertools[tracer]==3.37.0 --hash=sha256:cccc
"""


def test_checker_accepts_a_hashed_lock() -> None:
    assert parse_lock(GOOD) == ({"numpy": "2.4.6", "aws-lambda-powertools": "3.37.0"}, [])


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("certifi --hash=sha256:dd", "certifi: not pinned with =="),
        ("urllib3>=2 --hash=sha256:dd", "urllib3: not pinned with =="),
        ("idna==3.* --hash=sha256:dd", "idna: not pinned with =="),
        ("charset-normalizer==3.4.7", "charset-normalizer: no --hash"),
        ("numpy==2.4.6 --hash=sha256:dd", "numpy: listed twice"),
        ("-e .", "not a pinned requirement"),
        ("--index-url https://example.invalid/simple", "not a pinned requirement"),
    ],
)
def test_checker_refuses(line: str, problem: str) -> None:
    _, problems = parse_lock(GOOD + line + "\n")
    assert len(problems) == 1
    assert problem in problems[0]


def test_checker_refuses_an_empty_lock() -> None:
    assert parse_lock("# nothing\n")[1] == ["no requirements"]


def test_checker_finds_a_version_that_differs() -> None:
    dev = {"numpy": "2.4.6", "pydantic": "2.14.4"}
    assert version_mismatches({"numpy": "2.4.6", "six": "1.17.0"}, dev) == []
    assert version_mismatches({"numpy": "2.5.5"}, dev) == ["numpy: layer 2.5.5, dev lock 2.4.6"]


# ---------------------------------------------------------------- the locks in the repository


def test_dev_lock_pins_every_package_with_hashes() -> None:
    pins, problems = parse_lock(DEV_LOCK.read_text())
    assert problems == []
    assert {"numpy", "pydantic", "ccxt", "moto", "ta-lib", "threadpoolctl"} <= set(pins)


def test_dev_lock_satisfies_pyproject() -> None:
    """Every requirement of `.[dev]` is locked at a version its range allows: a range edited in
    pyproject.toml without `make lock` fails here."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    todo, seen = ["dev"], set()
    while todo:
        extra = todo.pop()
        seen.add(extra)
        for req in map(Requirement, extras[extra]):
            if canonicalize_name(req.name) == canonicalize_name(project["name"]):
                todo += [e for e in req.extras if e not in seen]
            else:
                wanted.append(req)
    pins = dev_lock()
    for req in wanted:
        name = canonicalize_name(req.name)
        assert name in pins, f"{name} is in pyproject.toml but not in {DEV_LOCK.name}"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{name}=={pins[name]} is outside pyproject.toml's {req.specifier}: run `make lock`"
        )


def test_every_layer_has_locks() -> None:
    assert {p.parent.name for p in LAYER_LOCKS} == {"core", "exchange", "numpy"}
    for lock in LAYER_LOCKS:
        assert lock.with_suffix(".in").is_file(), f"{layer_id(lock)} has no .in to compile"


@pytest.mark.parametrize("lock", LAYER_LOCKS, ids=layer_id)
def test_layer_lock_pins_every_package_with_hashes(lock: Path) -> None:
    pins, problems = parse_lock(lock.read_text())
    assert problems == []
    missing = direct_names(lock.with_suffix(".in")) - set(pins)
    assert not missing, f"{layer_id(lock)} lacks {sorted(missing)}"


@pytest.mark.parametrize("lock", LAYER_LOCKS, ids=layer_id)
def test_layer_ships_the_versions_the_tests_run_against(lock: Path) -> None:
    pins, _ = parse_lock(lock.read_text())
    assert version_mismatches(pins, dev_lock()) == []


def test_exchange_layer_pins_what_requests_pulls_in() -> None:
    pins, _ = parse_lock((LAYERS / "exchange" / "requirements-sync.txt").read_text())
    assert {"urllib3", "certifi", "idna", "charset-normalizer", "cryptography"} <= set(pins)


def test_installs_refuse_unhashed_packages() -> None:
    shared = (LAYERS / "shared.mk").read_text()
    assert re.search(r"^PIP = .*--require-hashes", shared, re.MULTILINE)
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet --require-hashes -r $(LOCK)" in makefile
    assert "LOCK := requirements/dev.lock" in makefile
