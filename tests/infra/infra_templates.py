"""Where the templates are and how to read them (shared by the infra tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cfnlint.decode import cfn_yaml

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"

# The templates issue 7 asks for; each test module also checks any other template
# that appears in infra/ (the optional dagster.yaml).
REQUIRED_TEMPLATES = ("network.yaml", "redshift.yaml", "pipeline.yaml")

IAM_TYPES = ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def template_paths() -> list[Path]:
    """Every CloudFormation template at the top of infra/."""
    return sorted(
        p for p in INFRA.glob("*.yaml") if "AWSTemplateFormatVersion" in p.read_text()
    )


def load_template(name: str) -> dict[str, Any]:
    """Parse a template, short tags (!Ref, !Sub, !GetAtt ...) included."""
    return cfn_yaml.load(str(INFRA / name))


def choose(node: Any, **conditions: bool) -> Any:
    """The template fragment as CloudFormation sees it when the named conditions hold
    the given values: every {"Fn::If": [name, a, b]} on them becomes a or b."""
    if isinstance(node, dict):
        branch = node.get("Fn::If")
        if len(node) == 1 and isinstance(branch, list) and branch[0] in conditions:
            return choose(branch[1] if conditions[branch[0]] else branch[2], **conditions)
        return {k: choose(v, **conditions) for k, v in node.items()}
    if isinstance(node, list):
        return [choose(v, **conditions) for v in node]
    return node


def sub_text(node: Any) -> str:
    """The text of a Fn::Sub with its own variables inlined; template parameters and
    pseudo parameters stay as ${Name}."""
    value = node["Fn::Sub"] if isinstance(node, dict) else node
    if isinstance(value, str):
        return value
    text, variables = value
    for name, inner in variables.items():
        text = text.replace("${" + name + "}", sub_text(inner))
    return text


def as_list(value: Any) -> list[Any]:
    """A policy field that may hold one value or a list, as a list."""
    return value if isinstance(value, list) else [value]


def drop_novalue(node: Any) -> Any:
    """What CloudFormation deploys: properties and list items that are AWS::NoValue left out."""
    novalue = {"Ref": "AWS::NoValue"}
    if isinstance(node, dict):
        return {k: drop_novalue(v) for k, v in node.items() if v != novalue}
    if isinstance(node, list):
        return [drop_novalue(v) for v in node if v != novalue]
    return node


def load_rendered(name: str, **conditions: bool) -> dict[str, Any]:
    """A template as deployed when the named conditions hold the given values."""
    return drop_novalue(choose(load_template(name), **conditions))


# dagster.yaml with ConnectionMode=driver (its default).
DAGSTER_DRIVER = {"IsDataApi": False, "IsDataApiWorkgroup": False}
