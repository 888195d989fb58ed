"""Parse target URLs and show them without secrets."""
from __future__ import annotations

import re
from urllib.parse import SplitResult, parse_qsl, urlsplit

from dbops.errors import ConfigError

SECRET_PARAMS = {"password", "secret", "token", "sessiontoken", "session_token", "secret_access_key", "access_key_secret"}
_USERINFO_PASSWORD = re.compile(r"(?P<head>^[a-zA-Z][a-zA-Z0-9+.-]*://[^/@:]*:)(?P<pw>[^/@]*)(?P<at>@)")
# A URL inside a message (an error, a log line): its user info ends at white space or a quote.
_EMBEDDED_PASSWORD = re.compile(r"""(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/@:\s'"`]*:)(?P<pw>[^/@\s'"`]*)(?P<at>@)""")


def redact(url: str) -> str:
    """The URL, or a message holding URLs, with any password (user info or query parameter) replaced by `***`."""
    if not url:
        return url
    url = _USERINFO_PASSWORD.sub(lambda m: m["head"] + ("***" if m["pw"] else "") + m["at"], url)
    url = _EMBEDDED_PASSWORD.sub(lambda m: m["head"] + ("***" if m["pw"] else "") + m["at"], url)

    def mask(match: re.Match[str]) -> str:
        return f"{match[1]}={'***'}"

    return re.sub(
        r"(?i)(?<=[?&])(" + "|".join(sorted(SECRET_PARAMS)) + r")=[^&#]*",
        mask,
        url,
    )


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
