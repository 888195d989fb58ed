"""buildspec.yml: install from the lock file, test, validate, migrate with the build's commit; no secret inline."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from cfnlint.decode import cfn_yaml

from tests.gitrepo import GitRepo

ROOT = Path(__file__).resolve().parents[1]
SPEC = yaml.safe_load((ROOT / "buildspec.yml").read_text())
TEXT = (ROOT / "buildspec.yml").read_text()
PHASES = ("install", "pre_build", "build", "post_build")


def commands() -> list[str]:
    return [c for phase in PHASES for c in SPEC["phases"].get(phase, {}).get("commands", [])]


def index_of(pattern: str) -> int:
    found = [i for i, c in enumerate(commands()) if re.search(pattern, c)]
    assert len(found) == 1, (pattern, found)
    return found[0]


def driver_mode(node):
    """The template as ConnectionMode=driver renders it: each Fn::If on IsDataApi takes its second branch."""
    if isinstance(node, dict):
        branch = node.get("Fn::If")
        if len(node) == 1 and isinstance(branch, list) and branch[0] == "IsDataApi":
            return driver_mode(branch[2])
        return {k: driver_mode(v) for k, v in node.items()}
    if isinstance(node, list):
        return [driver_mode(v) for v in node]
    return node


def project_variables() -> dict[str, dict]:
    """Environment variables the CodeBuild project of infra/pipeline.yaml gives the build."""
    template = cfn_yaml.load(str(ROOT / "infra" / "pipeline.yaml"))
    (project,) = [r for r in template["Resources"].values()
                  if r["Type"] == "AWS::CodeBuild::Project" and r["Properties"]["Source"].get("BuildSpec") == "buildspec.yml"]
    variables = driver_mode(project["Properties"]["Environment"]["EnvironmentVariables"])
    return {v["Name"]: v for v in variables if v != {"Ref": "AWS::NoValue"}}


def test_version_and_the_steps_in_order() -> None:
    assert str(SPEC["version"]) == "0.2"
    steps = [index_of(r"^uv sync --frozen$"), index_of(r"uv run pytest"), index_of(r"^uv run dbops validate$"), index_of(r"uv run dbops migrate")]
    assert steps == sorted(steps)
    migrate = commands()[steps[-1]]
    assert '--commit "$DBOPS_COMMIT" --author "$DBOPS_AUTHOR" --message "$DBOPS_MESSAGE"' in migrate
    assert "DBOPS_SOURCE" not in migrate  # CodeBuild runs the CLI: source "cli", as DESIGN lists
    assert index_of(r"export DBOPS_COMMIT=") < steps[-1]
    for phase in ("install", "pre_build"):
        assert SPEC["phases"][phase]["on-failure"] == "ABORT"


def test_test_results_go_to_the_report_group_of_the_pipeline_stack() -> None:
    pytest_command = commands()[index_of(r"uv run pytest")]
    junit = re.search(r"--junitxml=(\S+)", pytest_command).group(1)
    [(name, group)] = SPEC["reports"].items()
    assert group["file-format"] == "JUNITXML"
    assert [f"{group['base-directory']}/{f}" for f in group["files"]] == [junit]
    template = cfn_yaml.load(str(ROOT / "infra" / "pipeline.yaml"))["Resources"]
    project_name = template["BuildProject"]["Properties"]["Name"]["Fn::Sub"]
    report_group = next(r for r in template.values() if r["Type"] == "AWS::CodeBuild::ReportGroup")["Properties"]["Name"]["Fn::Sub"]
    assert f"{project_name}-{name}" == report_group


def test_the_tests_never_see_the_warehouse_or_the_shared_dagster_instance() -> None:
    pytest_command = commands()[index_of(r"uv run pytest")]
    unset = set(re.findall(r"-u (\w+)", pytest_command))
    given = {n for n in project_variables() if n.startswith(("DAGSTER_", "DBOPS_")) and n != "DBOPS_COMMIT_ID"}
    assert given and given <= unset, given - unset


def test_the_build_records_on_the_shared_postgres_dagster_instance() -> None:
    copy = commands()[index_of(r"dagster_home/dagster.yaml")]
    assert copy == (
        'mkdir -p "$DAGSTER_HOME" && if [ -n "${DAGSTER_PG_HOST:-}" ]; then '
        'cp infra/dagster_home/dagster.yaml "$DAGSTER_HOME/dagster.yaml"; fi'
    )
    assert index_of(r"dagster_home/dagster.yaml") < index_of(r"uv run dbops migrate")
    instance = yaml.safe_load((ROOT / "infra" / "dagster_home" / "dagster.yaml").read_text())
    assert set(instance["storage"]) == {"postgres"}
    assert os.path.isabs(project_variables()["DAGSTER_HOME"]["Value"])


def test_no_secret_is_written_in_the_buildspec() -> None:
    env = SPEC.get("env", {})
    for name, value in env.get("variables", {}).items():
        assert not re.search(r"PASSWORD|SECRET|TOKEN|CREDENTIAL|KEY", name), name
        assert not re.search(r"://[^/\s:@]+:[^/\s@]+@", str(value)), name
    assert not re.search(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b", TEXT)
    assert not re.search(r"\b\d{12}\b", TEXT), "an AWS account id"
    assert not re.search(r"arn:aws[a-z-]*:secretsmanager", TEXT)
    assert not re.search(r"(?i)(password|secret)\s*[=:]\s*['\"]?[A-Za-z0-9/+]{6,}", TEXT)
    variables = project_variables()
    used = set(re.findall(r"\$\{?(\w+)", TEXT))
    secret_like = {n for n in used | set(variables) if re.search(r"PASSWORD|USERNAME|SECRET|TOKEN", n)}
    for name in secret_like:
        declared_here = name in env.get("secrets-manager", {})
        assert declared_here or variables.get(name, {}).get("Type") == "SECRETS_MANAGER", name


def commit_block() -> str:
    return commands()[index_of(r"export DBOPS_COMMIT=")]


def exported(done: subprocess.CompletedProcess) -> list[str]:
    """DBOPS_COMMIT, DBOPS_AUTHOR and DBOPS_MESSAGE as the block left them."""
    return done.stdout.split("==\n", 1)[1].split("\n--\n")


def run_block(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    script = commit_block() + '\nprintf "==\\n%s\\n--\\n%s\\n--\\n%s" "$DBOPS_COMMIT" "$DBOPS_AUTHOR" "$DBOPS_MESSAGE"\n'
    base = {"PATH": os.environ["PATH"], "HOME": str(cwd), "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["bash", "-c", script], cwd=cwd, env={**base, **env}, capture_output=True, text=True)


def test_commit_author_and_message_come_from_git_in_a_clone(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "src")
    commit = repo.commit("Add V7: orders by region\n\nFor the finance team.", {"sql/V7__orders.sql": "select 7;"},
                         author="Grace Hopper <grace@example.com>")
    repo.commit("a later commit", {"README.md": "later"})
    done = run_block(repo.path, {"CODEBUILD_RESOLVED_SOURCE_VERSION": commit})
    assert done.returncode == 0, done.stderr
    assert exported(done) == [commit, "Grace Hopper <grace@example.com>", "Add V7: orders by region\n\nFor the finance team."]


def test_without_git_the_commit_comes_from_codecommit(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    fake = bin_dir / "aws"
    fake.write_text(
        "#!/bin/bash\n"
        f'echo "$*" >> {calls}\n'
        'case "$*" in\n'
        '  *commit.author*) printf "Grace Hopper\\tgrace@example.com\\n" ;;\n'
        '  *commit.message*) printf "Add V7\\n" ;;\n'
        "esac\n"
    )
    fake.chmod(0o755)
    source = tmp_path / "src"
    source.mkdir()
    commit = "4" * 40
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "CODEBUILD_RESOLVED_SOURCE_VERSION": commit,
        "CODEBUILD_SOURCE_REPO_URL": "https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/warehouse",
    }
    done = run_block(source, env)
    assert done.returncode == 0, done.stderr
    assert exported(done) == [commit, "Grace Hopper <grace@example.com>", "Add V7"]
    assert calls.read_text().splitlines() == [
        f"codecommit get-commit --repository-name warehouse --commit-id {commit} --query [commit.author.name, commit.author.email] --output text",
        f"codecommit get-commit --repository-name warehouse --commit-id {commit} --query commit.message --output text",
    ]


@pytest.mark.parametrize(("env", "says"), [
    ({}, "no commit id: CODEBUILD_RESOLVED_SOURCE_VERSION and DBOPS_COMMIT_ID are both empty"),
    ({"DBOPS_COMMIT_ID": "5" * 40}, "no .git in the source and no CodeCommit repository name: set DBOPS_CODECOMMIT_REPOSITORY"),
])
def test_a_build_without_commit_information_stops(tmp_path: Path, env: dict[str, str], says: str) -> None:
    done = run_block(tmp_path, env)
    assert done.returncode == 1 and says in done.stderr
