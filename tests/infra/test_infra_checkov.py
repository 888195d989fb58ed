"""checkov: no failed check on any template; every skip is known and explained.

checkov runs once per module (it takes several seconds) over a copy of infra/ plus a
canary template - redshift.yaml made public and unencrypted - so the same run also
proves that checkov parsed the templates and would report a real finding.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra_templates import INFRA, template_paths

CANARY = "canary_public_unencrypted_redshift.yaml"

# The only skips allowed, each with its reason in the template's Metadata.
EXPECTED_SKIPS = {
    ("CKV_AWS_71", "redshift.yaml", "AWS::Redshift::Cluster.Cluster"),
    ("CKV_AWS_18", "pipeline.yaml", "AWS::S3::Bucket.AccessLogBucket"),
    ("CKV_AWS_18", "dagster.yaml", "AWS::S3::Bucket.AccessLogBucket"),
}


def _checkov() -> list[str]:
    exe = Path(sys.executable).with_name("checkov")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "checkov.main"]


@pytest.fixture(scope="module")
def checkov_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("checkov")
    for path in template_paths():
        shutil.copy(path, root / path.name)
    text = (INFRA / "redshift.yaml").read_text()
    canary = text.replace("PubliclyAccessible: false", "PubliclyAccessible: true")
    canary = canary.replace("      Encrypted: true", "      Encrypted: false")
    assert canary != text
    (root / CANARY).write_text(canary)
    proc = subprocess.run(
        [*_checkov(), "-d", str(root), "--framework", "cloudformation",
         "--output", "json", "--skip-download", "--soft-fail"],
        capture_output=True, text=True, timeout=300, cwd=root,
    )
    assert proc.stdout.strip(), proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    (cfn,) = [r for r in reports if r.get("check_type") == "cloudformation"]
    return cfn


def _by_file(checks: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [c for c in checks if Path(c["file_path"]).name == name]


def test_checkov_parsed_every_template(checkov_results: dict[str, Any]) -> None:
    assert checkov_results["summary"]["parsing_errors"] == 0
    passed = checkov_results["results"]["passed_checks"]
    for path in template_paths():
        assert _by_file(passed, path.name), f"checkov ran no check on {path.name}"


@pytest.mark.parametrize("path", template_paths(), ids=lambda p: p.name)
def test_no_failed_checkov_checks(checkov_results: dict[str, Any], path: Path) -> None:
    failed = _by_file(checkov_results["results"]["failed_checks"], path.name)
    assert [(c["check_id"], c["resource"], c["check_name"]) for c in failed] == []


def test_checkov_skips_are_the_reviewed_ones_with_reasons(
    checkov_results: dict[str, Any],
) -> None:
    skipped = [
        c for c in checkov_results["results"]["skipped_checks"]
        if Path(c["file_path"]).name != CANARY
    ]
    found = {(c["check_id"], Path(c["file_path"]).name, c["resource"]) for c in skipped}
    assert found == EXPECTED_SKIPS
    for check in skipped:
        reason = check["check_result"].get("suppress_comment") or ""
        assert len(reason.split()) >= 8, f"{check['check_id']} skipped without a reason"


def test_checkov_flags_the_canary(checkov_results: dict[str, Any]) -> None:
    failed = {c["check_id"] for c in _by_file(checkov_results["results"]["failed_checks"], CANARY)}
    assert {"CKV_AWS_87", "CKV_AWS_64"} <= failed  # publicly accessible, not encrypted
