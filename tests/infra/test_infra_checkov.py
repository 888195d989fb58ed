"""checkov: no failed check on any template; every skip is known and explained.

checkov runs once per module (it takes several seconds) over a copy of infra/ plus a
canary template - redshift.yaml made public and unencrypted - so the same run also
proves that checkov parsed the templates and would report a real finding.

checkov drops resources whose condition is false under the parameters' defaults, so
the run also holds redshift.yaml with DeploymentType defaulting to serverless: the
Redshift Serverless resources and their custom resource function are checked too.
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
SERVERLESS = "redshift_serverless_variant.yaml"
LOOKUP = "AWS::Lambda::Function.AdminSecretLookupFunction"

# The only skips allowed, each with its reason in the template's Metadata.
EXPECTED_SKIPS = {
    ("CKV_AWS_71", "redshift.yaml", "AWS::Redshift::Cluster.Cluster"),
    ("CKV_AWS_18", "pipeline.yaml", "AWS::S3::Bucket.AccessLogBucket"),
    ("CKV_AWS_18", "dagster.yaml", "AWS::S3::Bucket.AccessLogBucket"),
    ("CKV_AWS_115", SERVERLESS, LOOKUP),
    ("CKV_AWS_116", SERVERLESS, LOOKUP),
    ("CKV_AWS_117", SERVERLESS, LOOKUP),
    ("CKV_AWS_173", SERVERLESS, LOOKUP),
}


def serverless_variant(text: str) -> str:
    variant = text.replace("    Default: provisioned\n", "    Default: serverless\n")
    assert variant != text
    return variant


def _checkov() -> list[str]:
    exe = Path(sys.executable).with_name("checkov")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "checkov.main"]


def _run_checkov(root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*_checkov(), "-d", str(root), "--framework", "cloudformation",
         "--output", "json", "--skip-download", "--soft-fail"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=root,
    )


def _report(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=300)
    assert out.strip(), err[-2000:]
    report = json.loads(out)
    reports = report if isinstance(report, list) else [report]
    (cfn,) = [r for r in reports if r.get("check_type") == "cloudformation"]
    return cfn


@pytest.fixture(scope="module")
def checkov_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One report for infra/ plus the canary, and the serverless variant scanned in a
    run of its own: checkov mixes up the parameter defaults of templates that share
    parameter names but not defaults, and then skips resources in both."""
    root = tmp_path_factory.mktemp("checkov")
    for path in template_paths():
        shutil.copy(path, root / path.name)
    text = (INFRA / "redshift.yaml").read_text()
    canary = text.replace("PubliclyAccessible: false", "PubliclyAccessible: true")
    canary = canary.replace("      Encrypted: true", "      Encrypted: false")
    assert canary != text
    (root / CANARY).write_text(canary)
    variant_root = tmp_path_factory.mktemp("checkov-serverless")
    (variant_root / SERVERLESS).write_text(serverless_variant(text))
    runs = [_run_checkov(root), _run_checkov(variant_root)]
    main, variant = (_report(proc) for proc in runs)
    assert variant["summary"]["parsing_errors"] == 0
    for kind in ("passed_checks", "failed_checks", "skipped_checks"):
        main["results"][kind] += variant["results"][kind]
    return main


def _by_file(checks: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [c for c in checks if Path(c["file_path"]).name == name]


def test_checkov_parsed_every_template(checkov_results: dict[str, Any]) -> None:
    assert checkov_results["summary"]["parsing_errors"] == 0
    passed = checkov_results["results"]["passed_checks"]
    for path in template_paths():
        assert _by_file(passed, path.name), f"checkov ran no check on {path.name}"


@pytest.mark.parametrize("name", [p.name for p in template_paths()] + [SERVERLESS])
def test_no_failed_checkov_checks(checkov_results: dict[str, Any], name: str) -> None:
    failed = _by_file(checkov_results["results"]["failed_checks"], name)
    assert [(c["check_id"], c["resource"], c["check_name"]) for c in failed] == []


def test_checkov_checked_the_serverless_resources(checkov_results: dict[str, Any]) -> None:
    passed = {c["resource"] for c in _by_file(checkov_results["results"]["passed_checks"], SERVERLESS)}
    assert {LOOKUP, "AWS::IAM::Role.AdminSecretLookupRole",
            "AWS::Logs::LogGroup.AdminSecretLookupLogGroup"} <= passed


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
