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
        ("host=/tmp/x user=postgres password=s3cr3tpw dbname=x", "host=/tmp/x user=postgres password=*** dbname=x"),
        ("host=h password = 'a b\\' c' dbname=x", "host=h password=*** dbname=x"),
        ("password='never closed dbname=x", "password=***"),
        ("unsupported URL x?user=u&password=pw: use postgresql://", "unsupported URL x?user=u&password=*** use postgresql://"),
        ("cannot connect to postgresql://u@/db?host=/s&password=pw&sslmode=disable: FATAL: no database",
         "cannot connect to postgresql://u@/db?host=/s&password=***&sslmode=disable: FATAL: no database"),
        ("cannot connect to postgresql://u@/db?password=pw cause", "cannot connect to postgresql://u@/db?password=*** cause"),
        ("postgresql://u@/db?password=pw#frag", "postgresql://u@/db?password=***#frag"),
        ('write password = "${env.NAME}" instead', 'write password = "${env.NAME}" instead'),
        ("password = ${env.A_PW}, or", "password = ${env.A_PW}, or"),
        ("password = ${env.A}x host=h", "password=*** host=h"),
    ],
)
def test_passwords_are_replaced_in_urls_and_in_messages(text, expected):
    assert redact(text) == expected
    assert redact(expected) == expected  # a message redacted twice (its URL, then the whole) keeps what follows


def test_a_redacted_url_inside_a_message_keeps_the_rest_of_the_message() -> None:
    message = f"cannot connect to {redact('postgresql://u@/db?host=/s&password=pw')}: FATAL: database does not exist"
    assert redact(message) == "cannot connect to postgresql://u@/db?host=/s&password=***: FATAL: database does not exist"


@pytest.mark.parametrize("scheme", ["postgresql", "redshift", "redshift-data"])
def test_a_malformed_host_is_bad_input_naming_the_url_for_every_driver(scheme: str) -> None:
    from dbops.errors import ConfigError
    from dbops.targets import open_target

    with pytest.raises(ConfigError, match=r"invalid database URL .*://alice:\*\*\*@\[bad") as raised:
        open_target(f"{scheme}://alice:s3cret@[bad/dev")
    assert raised.value.exit_code == 2
    assert "s3cret" not in str(raised.value)
