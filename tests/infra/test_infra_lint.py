"""cfn-lint: no errors and no warnings on any template, in several Regions."""

from __future__ import annotations

from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint
from infra_templates import INFRA, REQUIRED_TEMPLATES, template_paths

# Region-specific rules (node types, AZ counts, service availability) are checked
# where the stacks are most likely to be deployed.
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2"]


def lint_text(text: str) -> list[str]:
    """Every cfn-lint error and warning (informational findings excluded)."""
    matches = lint(text, config=ManualArgs(regions=REGIONS))
    return [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches]


def test_all_required_templates_present() -> None:
    names = {p.name for p in template_paths()}
    assert set(REQUIRED_TEMPLATES) <= names


@pytest.mark.parametrize("path", template_paths(), ids=lambda p: p.name)
def test_template_is_cfn_lint_clean(path: Path) -> None:
    assert lint_text(path.read_text()) == []


def test_cfn_lint_reports_a_broken_template() -> None:
    """The harness is not vacuous: a wrong port type and a bad reference are caught."""
    text = (INFRA / "redshift.yaml").read_text()
    broken = text.replace("      Port: 5439\n", "      Port: fivefourthreenine\n", 1)
    broken = broken.replace("!Ref ParameterGroup", "!Ref NoSuchParameterGroup", 1)
    assert broken != text
    findings = lint_text(broken)
    assert any(f.startswith("E3012") for f in findings), findings  # wrong type
    assert any(f.startswith("E1020") for f in findings), findings  # unresolved Ref
