"""No Docker engine runs here, so check that the image installs exactly as `make install` does."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pip_installs(lines: list[str]) -> list[str]:
    """The package arguments of each `pip install` line, in order."""
    out = []
    for line in lines:
        m = re.search(r"(?:pip|\$\(PIP\)) install (.*)", line)
        if m:
            command = m.group(1).split("#", 1)[0]
            args = [a.strip("'\"") for a in command.split() if not a.startswith("-")]
            out.append(" ".join(args))
    return out


def test_dockerfile_installs_like_the_makefile() -> None:
    make = (ROOT / "Makefile").read_text()
    recipe = make.split("$(STAMP): pyproject.toml", 1)[1].split("\n\n", 1)[0].splitlines()
    docker = (ROOT / "Dockerfile").read_text().splitlines()
    make_installs = _pip_installs(recipe)
    docker_installs = _pip_installs([line for line in docker if line.startswith("RUN")])
    # the same steps in the same order: pip itself, CPU torch first, then the project; the image
    # drops only the dev tools
    assert "torch==2.13.0" in make_installs
    assert make_installs.index("torch==2.13.0") < make_installs.index(".[model,dev]")
    assert docker_installs == [i.replace(".[model,dev]", ".[model]") for i in make_installs]


def test_dockerfile_ships_what_the_app_reads_at_run_time() -> None:
    docker = (ROOT / "Dockerfile").read_text()
    for needed in ("COPY prompts/", "COPY data/samples/", "chatbot/", "ingest/"):
        assert needed in docker
    assert re.search(r'CMD \["chatbot", "serve"', docker)
    assert "USER chatbot" in docker
