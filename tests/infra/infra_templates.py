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
