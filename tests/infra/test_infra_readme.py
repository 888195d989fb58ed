"""The README's "Deploy to AWS" commands pass parameters the templates have, with
values the templates accept, and the capabilities the templates need."""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
from infra_templates import IAM_TYPES, REPO, load_template


def deploy_commands() -> list[list[str]]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Deploy to AWS", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.DOTALL)
    commands = []
    for block in blocks:
        for command in block.replace("\\\n", " ").splitlines():
            if command.strip().startswith("aws cloudformation deploy"):
                commands.append(shlex.split(command, comments=True))
    return commands


def option(words: list[str], name: str) -> list[str]:
    """The words after --name up to the next option."""
    if name not in words:
        return []
    rest = words[words.index(name) + 1:]
    return rest[: next((i for i, w in enumerate(rest) if w.startswith("--")), len(rest))]


def accepted(spec: dict[str, Any], value: str) -> bool:
    if value.startswith("$"):  # filled from a previous stack's output
        return True
    if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
        return False
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
        return False
    if spec["Type"] == "Number":
        number = float(value)
        return spec.get("MinValue", number) <= number <= spec.get("MaxValue", number)
    return True


def test_the_readme_deploys_every_template_once_per_variant() -> None:
    templates = [option(c, "--template-file")[0] for c in deploy_commands()]
    assert templates == ["infra/network.yaml", "infra/redshift.yaml", "infra/redshift.yaml",
                         "infra/dagster.yaml", "infra/pipeline.yaml"]


@pytest.mark.parametrize("command", deploy_commands(), ids=lambda c: " ".join(c[3:8]))
def test_deploy_command_matches_its_template(command: list[str]) -> None:
    (path,) = option(command, "--template-file")
    template = load_template(path.removeprefix("infra/"))
    for pair in option(command, "--parameter-overrides"):
        name, value = pair.split("=", 1)
        assert name in template["Parameters"], f"{path} has no parameter {name}"
        assert accepted(template["Parameters"][name], value), f"{path} rejects {pair}"
    if any(r["Type"] in IAM_TYPES for r in template["Resources"].values()):
        assert "CAPABILITY_IAM" in option(command, "--capabilities")


def test_readme_gives_serverless_a_valid_third_subnet() -> None:
    readme = (REPO / "README.md").read_text()
    (cidr,) = re.findall(r"PrivateSubnet3Cidr=(\S+?)`", readme)
    parameters = load_template("network.yaml")["Parameters"]
    assert accepted(parameters["PrivateSubnet3Cidr"], cidr)
    others = [parameters[f"{tier}Subnet{i}Cidr"]["Default"] for tier in ("Public", "Private") for i in (1, 2)]
    assert cidr not in others
