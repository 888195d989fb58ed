"""Parse target URLs and show them without secrets."""
from __future__ import annotations

import re
from urllib.parse import SplitResult, parse_qsl, urlsplit

from dbops.errors import ConfigError

SECRET_PARAMS = {"password", "secret", "token", "sessiontoken", "session_token", "secret_access_key", "access_key_secret"}
_USERINFO_PASSWORD = re.compile(r"(?P<head>^[a-zA-Z][a-zA-Z0-9+.-]*://[^/@:]*:)(?P<pw>[^/@]*)(?P<at>@)")
# A URL inside a message (an error, a log line): its user info ends at white space or a quote.
_EMBEDDED_PASSWORD = re.compile(r"""(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/@:\s'"`]*:)(?P<pw>[^/@\s'"`]*)(?P<at>@)""")

_SECRET_NAMES = "|".join(sorted(SECRET_PARAMS, key=len, reverse=True))
# What redact() wrote itself: `***`, then the end of the token, or punctuation of the message around it (`***: …`).
_REDACTED = r"\*\*\*(?=[:,;.)\]}'\"`]*(?:[\s&#]|$))"
# `?password=…` / `&password=…`: the value ends at `&`, `#`, white space or the end of the text.
_QUERY_SECRET = re.compile(rf"(?i)(?<=[?&])(?P<key>{_SECRET_NAMES})=(?:{_REDACTED}|[^&#\s]*)")
# `password = "${env.NAME}"` in a hint names a variable, not a password: kept.
_REFERENCE = r"\"?\$\{[\w.:-]+\}\"?(?![^\s,;.)])"
# libpq's `host=h password=pw` / `password = 'a b'`: a keyword at the start or after white space; a quoted value
# ends at its closing quote (`\'` and `\\` escaped inside), a bare one at white space.
_KEYWORD_SECRET = re.compile(
    rf"(?i)(?:^|(?<=\s))(?P<key>{_SECRET_NAMES})\s*+=\s*+(?!{_REFERENCE})(?:{_REDACTED}|'(?:[^'\\]|\\.)*(?:'|\\?$)|[^\s']\S*|(?=\s|$))"
)


def redact(url: str) -> str:
    """The URL, or a message holding URLs or libpq `key=value` strings, with any password (user info, query
    parameter or keyword) replaced by `***`; the text after the password is kept."""
    if not url:
        return url
    url = _USERINFO_PASSWORD.sub(lambda m: m["head"] + ("***" if m["pw"] else "") + m["at"], url)
    url = _EMBEDDED_PASSWORD.sub(lambda m: m["head"] + ("***" if m["pw"] else "") + m["at"], url)
    url = _QUERY_SECRET.sub(lambda m: f"{m['key']}=***", url)
    return _KEYWORD_SECRET.sub(lambda m: f"{m['key']}=***", url)


def query_params(url: str) -> dict[str, str]:
    """Query parameters of a URL, last one wins, keys lower-cased."""
    return {k.lower(): v for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True)}


def split_url(url: str, kind: str, known: tuple[str, ...] | list[str]) -> tuple[SplitResult, int | None, dict[str, str]]:
    """A `kind` URL's parts, port and query parameters; a malformed URL or a parameter not in `known` is bad input."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"invalid database URL {redact(url)}: {exc}") from None
    params = query_params(url)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ConfigError(f"{kind} URL {redact(url)}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return parts, port, params


_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off", "")


def flag_param(params: dict[str, str], name: str, url: str) -> bool:
    """A true/false URL parameter (true, 1, yes, on / false, 0, no, off, absent); anything else is bad input."""
    value = params.get(name, "").lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={params[name]} is not true or false, in {redact(url)}")


_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


def scheme_of(url: str) -> str:
    """The URL's scheme, lower-cased ('' when there is none); read without parsing the rest, which the target
    for that scheme checks (and refuses with a message when malformed)."""
    match = _SCHEME.match(url)
    return match[1].lower() if match else ""
