"""Shared fixtures for the CloudFormation tests of infra/.

Nothing here reaches the network: moto serves AWS in-process, and the credentials
are fake ones set for the duration of each test module.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from infra_templates import FAKE_AWS_ENV, REQUIRED_TEMPLATES, load_template, template_paths


@pytest.fixture(scope="session")
def templates() -> dict[str, dict]:
    found = {p.name: load_template(p.name) for p in template_paths()}
    missing = [n for n in REQUIRED_TEMPLATES if n not in found]
    assert not missing, f"templates missing from infra/: {missing}"
    return found


@pytest.fixture(scope="module")
def fake_aws_credentials() -> Iterator[None]:
    """Fake credentials and region, so boto3 never finds real ones."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in FAKE_AWS_ENV.items():
            mp.setenv(key, value)
        mp.delenv("AWS_PROFILE", raising=False)
        mp.setenv("AWS_CONFIG_FILE", "/dev/null")
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        yield
