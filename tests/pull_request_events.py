"""CodeCommit pull-request events as EventBridge delivers them, and what infra/pipeline.yaml's review rule makes of them."""
from __future__ import annotations

import json
import re
from typing import Any

ACCOUNT = "123456789012"
REGION = "eu-west-1"
REPOSITORY = "warehouse"
REPOSITORY_ARN = f"arn:aws:codecommit:{REGION}:{ACCOUNT}:{REPOSITORY}"


def pull_request_event(event: str = "pullRequestCreated", destination: str = "refs/heads/main", pull_request_id: str = "7",
                       source_commit: str = "a" * 40, destination_commit: str = "b" * 40,
                       repository_arn: str = REPOSITORY_ARN) -> dict[str, Any]:
    """A "CodeCommit Pull Request State Change" event with the detail fields CodeCommit sends."""
    repository = repository_arn.rsplit(":", 1)[1]
    return {
        "version": "0", "id": "01234567-0123-0123-0123-0123456789ab", "detail-type": "CodeCommit Pull Request State Change",
        "source": "aws.codecommit", "account": ACCOUNT, "time": "2026-12-01T13:00:00Z", "region": REGION,
        "resources": [repository_arn],
        "detail": {
            "author": f"arn:aws:iam::{ACCOUNT}:user/grace", "callerUserArn": f"arn:aws:iam::{ACCOUNT}:user/grace",
            "creationDate": "Tue Dec 01 13:00:00 UTC 2026", "lastModifiedDate": "Tue Dec 01 13:00:00 UTC 2026",
            "description": "orders by region", "title": "Add V2", "event": event, "isMerged": "False",
            "notificationBody": "A pull request event occurred.", "pullRequestId": pull_request_id, "pullRequestStatus": "Open",
            "repositoryNames": [repository], "revisionId": "d" * 64, "sourceReference": "refs/heads/feature",
            "destinationReference": destination, "sourceCommit": source_commit, "destinationCommit": destination_commit,
        },
    }


def resolve(node: Any, values: dict[str, str]) -> Any:
    """A template fragment with Ref / Fn::GetAtt / Fn::ImportValue / Fn::Sub replaced by `values`
    (keys: parameter or resource names, "Resource.Attribute", "import:<export name>")."""
    if isinstance(node, list):
        return [resolve(v, values) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        (fn, arg), = node.items()
        if fn == "Ref":
            return values[arg]
        if fn == "Fn::GetAtt":
            return values[".".join(arg) if isinstance(arg, list) else arg]
        if fn == "Fn::ImportValue":
            return values["import:" + resolve(arg, values)]
        if fn == "Fn::Sub":
            text, local = (arg, {}) if isinstance(arg, str) else arg
            names = {**values, **{k: resolve(v, values) for k, v in local.items()}}
            return re.sub(r"\$\{([^}]+)\}", lambda m: names[m.group(1)], text)
    return {k: resolve(v, values) for k, v in node.items()}


def transform(transformer: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """EventBridge's input transformer: each `$.a.b[0]` path's value replaces "<name>" in the template, which
    must then be JSON. The template quotes every placeholder, so values go in as they are (CodeCommit's ids
    and commit ids need no escaping, which this checks)."""
    text = transformer["InputTemplate"]
    for name, path in transformer["InputPathsMap"].items():
        value: Any = event
        for key, index in re.findall(r"\.([\w-]+)(?:\[(\d+)\])?", path.removeprefix("$")):
            value = value[key] if not index else value[key][int(index)]
        assert isinstance(value, str) and re.fullmatch(r"[\w.-]+", value), (name, value)
        assert f'"<{name}>"' in text, f"<{name}> is not quoted in the input template"
        text = text.replace(f"<{name}>", value)
    return json.loads(text)
