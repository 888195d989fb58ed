"""The README's first command, run as a new user would: a fresh clone, a fresh virtual environment."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands() -> list[str]:
    """The commands of the README's Quick start block."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Quick start.*?```bash\n(.*?)```", readme, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]


def test_quick_start_is_two_commands_and_ci_runs_the_second() -> None:
    assert quick_start_commands() == ["make demo", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.skipif(shutil.which("uv") is None, reason="uv is installed by `make setup`")
def test_make_demo_in_a_fresh_clone(tmp_path: Path) -> None:
    clone = tmp_path / "dbops"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBOPS_", "DAGSTER_", "VIRTUAL_ENV", "UV_PROJECT"))}

    def run(*cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, cwd=clone, env=env, capture_output=True, text=True, timeout=600)

    try:
        first = run("make", "demo")
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        assert "Dagster run:" in first.stdout and "Applied" in first.stdout
        info = run(str(clone / ".venv" / "bin" / "dbops"), "info", "--json")
        states = {m["script"]: m["state"] for m in json.loads(info.stdout)["migrations"]}
        scripts = {p.relative_to(clone / "sql").as_posix() for p in (clone / "sql").rglob("*.sql")
                   if re.match(r"[VR]", p.name)}
        assert set(states) == scripts and set(states.values()) == {"Success"}
        second = run("make", "demo")
        assert second.returncode == 0 and "Nothing to migrate" in second.stdout
    finally:
        run(str(clone / ".venv" / "bin" / "dbops"), "local", "stop")
