"""Development sessions: `nox -s tests`, `mindeps`, `lint`, `typecheck`, `docs`, `bench`, `demo`."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

PYPROJECT = nox.project.load_toml("pyproject.toml")
# The agent frameworks' extras: heavy, so only `tests` and `typecheck` install them, and
# the light sessions leave out their tests (tests/integrations).
FRAMEWORKS = "pydantic-ai,langchain,langgraph,openai-agents"


def install_groups(
    session: nox.Session, *groups: str, extras: str = "", pins: Sequence[str] = ()
) -> None:
    """Install the package (with ``extras``) and the named dependency groups, in one
    resolution with ``pins`` (exact versions that must win)."""
    requirements: list[str] = []
    for group in groups:
        requirements.extend(nox.project.dependency_groups(PYPROJECT, group))
    session.install("--upgrade", "pip")
    session.install("-e", f".{extras}", *requirements, *pins)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite: both backends, uvloop, the real-host scenarios, the agent
    frameworks, and the step runners on real Dask and Ray."""
    install_groups(session, "test", "hosts", extras=f"[cli,uvloop,trio,dask,ray,{FRAMEWORKS}]")
    session.run("pytest", *session.posargs)


def minimum_pins() -> list[str]:
    """Every run-time dependency, and the trio extra, pinned to its declared minimum.

    Read from the pyproject, ``>=`` turned into ``==``, so the pins cannot drift from
    what is declared.
    """
    from packaging.requirements import Requirement

    project = PYPROJECT["project"]
    pins = []
    for line in [*project["dependencies"], *project["optional-dependencies"]["trio"]]:
        requirement = Requirement(line)
        floors = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        if len(floors) != 1:
            raise ValueError(f"{line!r} must declare exactly one minimum version (>=)")
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        marker = f"; {requirement.marker}" if requirement.marker else ""
        pins.append(f"{requirement.name}{extras}=={floors[0]}{marker}")
    return pins


#: What the light sessions leave out: the real hosts, and the agent frameworks and
#: engines (Dask, Ray) that only the ``tests`` session installs.
LIGHT = (
    "--ignore=tests/hosts",
    "--ignore=tests/integrations",
    "--ignore=tests/affinity",
    "--ignore=tests/runtime/engines",
)


@nox.session(default=False)
def mindeps(session: nox.Session) -> None:
    """Run the suite, less the real hosts and engines, on the declared minimum dependencies."""
    install_groups(session, "test", extras="[cli,uvloop,trio]", pins=minimum_pins())
    session.run("python", "-m", "pip", "list", "--format=freeze")
    session.run("pytest", *LIGHT, *session.posargs)


def _runs(command: str) -> bool:
    """Whether ``command`` is a Python that starts (a pyenv shim may exist, yet refuse)."""
    path = shutil.which(command)
    if path is None:
        return False
    try:
        return subprocess.run([path, "-c", ""], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


# The other supported Pythons (requires-python is >= 3.10), where this machine has them.
COMPAT_PYTHONS = [version for version in ("3.10", "3.12", "3.13") if _runs(f"python{version}")]


@nox.session(python=COMPAT_PYTHONS, default=False)
def compat(session: nox.Session) -> None:
    """Run the suite, less the real hosts and engines, on the other supported Pythons."""
    install_groups(session, "test", extras="[cli,uvloop,trio]")
    session.run("pytest", *LIGHT, *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff."""
    install_groups(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Type-check the package with mypy in strict mode."""
    install_groups(session, "typecheck", extras=f"[cli,{FRAMEWORKS}]")
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site strictly into site/."""
    install_groups(session, "docs", extras="[cli]")
    # mkdocs-material's banner about its successor is not a build problem.
    session.run(
        "mkdocs", "build", "--strict", "--site-dir", "site", env={"NO_MKDOCS_2_WARNING": "1"}
    )


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Run the benchmarks and print ratios against their baselines."""
    install_groups(session, "bench", extras="[uvloop,trio,cli,dask,ray]")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session(default=False)
def demo(session: nox.Session) -> None:
    """Run the demo workflow from examples/demo/ with live progress."""
    install_groups(session, extras="[cli]")
    session.run(
        "agentbridge",
        "run",
        "examples/demo/workflow.yaml",
        "--import",
        "examples.demo.steps",
        *session.posargs,
    )
