"""dbops.urls.redact: no password survives, whether the text is a URL or a message that holds one."""
from __future__ import annotations

import pytest

from dbops.urls import redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://ann:pw@db/dw", "postgresql://ann:***@db/dw"),
        ("postgresql://ann:p w@db/dw", "postgresql://ann:***@db/dw"),
        ("redshift://ann@dw.example:5439/dev?password=pw&sslmode=require", "redshift://ann@dw.example:5439/dev?password=***&sslmode=require"),
        (
            'invalid input syntax for type integer: "postgresql://ann:S3cret@db.internal/dw"',
            'invalid input syntax for type integer: "postgresql://ann:***@db.internal/dw"',
        ),
        ("cannot reach redshift://admin:Pw-1@dw:5439/dev or postgresql://u:x@h/d", "cannot reach redshift://admin:***@dw:5439/dev or postgresql://u:***@h/d"),
        ("no URL here: user:pw@host", "no URL here: user:pw@host"),
    ],
)
def test_passwords_are_replaced_in_urls_and_in_messages(text, expected):
    assert redact(text) == expected
