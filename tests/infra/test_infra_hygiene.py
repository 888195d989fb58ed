"""Nothing in infra/ holds a password, an account id, a partition, or a Region.

ARNs are built from the AWS::Partition / AWS::Region / AWS::AccountId pseudo
parameters so the same files deploy in any account and Region; passwords live only
in Secrets Manager.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.decode import cfn_yaml
from infra_templates import INFRA

ACCOUNT_ID = re.compile(r"(?<!\d)\d{12}(?!\d)")
LITERAL_ARN = re.compile(r"arn:aws(?:-[a-z]+)*:")  # ARNs must use ${AWS::Partition}
REGION = re.compile(
    r"\b(?:us|eu|ap|sa|ca|me|af|il|mx|cn)-(?:gov-|iso-|isob-)?"
    r"(?:north|south|east|west|central|northeast|southeast|northwest|southwest)-\d(?!\d)"
)
PASSWORD_KEY = re.compile(r"pass(?:word|wd)?$|pwd$|secret$|token$", re.IGNORECASE)
PASSWORD_TEXT = re.compile(
    r"""(?ix)(?:password|passwd|pwd)\w*["']?\s*[:=]\s*["']?(?!\s*[{$!]|\s*$|(?:true|false)\b)[^\s"',}]{4,}"""
)


def infra_files() -> list[Path]:
    return sorted(p for p in INFRA.rglob("*") if p.is_file())


def parse(path: Path) -> Any:
    if path.suffix not in (".yaml", ".yml", ".json"):
        return None
    text = path.read_text()
    if "AWSTemplateFormatVersion" in text:
        return cfn_yaml.load(str(path))
    return yaml.safe_load(text)


def literal_secrets(node: Any, where: str = "") -> list[str]:
    """Keys that name a password or secret and hold a literal string."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}/{key}"
            if PASSWORD_KEY.search(str(key)) and isinstance(value, (str, int)) and not isinstance(value, bool):
                found.append(here)
            if str(key) in ("MasterUserPassword", "AdminUserPassword", "MasterUserPasswordSecret"):
                found.append(here)
            found += literal_secrets(value, here)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += literal_secrets(item, f"{where}[{i}]")
    return found


def password_parameters(node: Any) -> list[str]:
    if not isinstance(node, dict) or not isinstance(node.get("Parameters"), dict):
        return []
    return [
        name for name, spec in node["Parameters"].items()
        if re.search(r"password|passwd", name, re.IGNORECASE) or spec.get("NoEcho")
    ]


def text_findings(text: str) -> list[str]:
    findings = []
    for label, pattern in (("account id", ACCOUNT_ID), ("literal ARN partition", LITERAL_ARN),
                           ("Region", REGION), ("password", PASSWORD_TEXT)):
        findings += [f"{label}: {m.group(0)!r}" for m in pattern.finditer(text)]
    return findings


def test_infra_holds_files() -> None:
    names = {p.relative_to(INFRA).as_posix() for p in infra_files()}
    assert {"network.yaml", "redshift.yaml", "pipeline.yaml", "dagster.yaml",
            "dagster_home/dagster.yaml", "dagster_ecs/dagster.yaml", "dagster_ecs/workspace.yaml"} <= names


@pytest.mark.parametrize("path", infra_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_no_account_id_region_arn_or_password_in_text(path: Path) -> None:
    assert text_findings(path.read_text()) == []


@pytest.mark.parametrize("path", infra_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_no_literal_secret_values_or_password_parameters(path: Path) -> None:
    document = parse(path)
    assert literal_secrets(document) == []
    assert password_parameters(document) == []


def test_the_checks_catch_what_the_old_setup_had() -> None:
    old = """
Parameters:
  MasterPassword: {Type: String, NoEcho: true}
Resources:
  Cluster:
    Type: AWS::Redshift::Cluster
    Properties:
      Port: 3306
      MasterUserPassword: Hunter2Hunter2
      IamRoles: [arn:aws:iam::123456789012:role/redshift-copy]
      AvailabilityZone: eu-west-1a
  Project:
    Type: AWS::CodeBuild::Project
    Properties:
      Environment:
        EnvironmentVariables:
          - {Name: FLYWAY_PASSWORD, Value: Hunter2Hunter2}
        password: Hunter2Hunter2
"""
    findings = text_findings(old)
    assert any(f.startswith("account id") for f in findings)
    assert any(f.startswith("literal ARN") for f in findings)
    assert any(f.startswith("Region") for f in findings)
    assert any(f.startswith("password") for f in findings)
    document = yaml.safe_load(old)
    assert "/Resources/Cluster/Properties/MasterUserPassword" in literal_secrets(document)
    assert "/Resources/Project/Properties/Environment/password" in literal_secrets(document)
    assert password_parameters(document) == ["MasterPassword"]
