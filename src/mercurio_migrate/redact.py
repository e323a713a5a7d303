"""Keep secrets out of output: DSN passwords are replaced before anything is printed or logged."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def redact_url(dsn: str | None) -> str:
    """The DSN with its password (URI or key=value form) replaced by ***."""
    if not dsn:
        return ""
    if "://" not in dsn:
        return _KV_PASSWORD.sub(r"\1***", dsn)
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return "<unparseable database URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostinfo = netloc.rpartition("@")
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{hostinfo}"
    query = re.sub(r"(^|&)(password=)[^&]*", r"\1\2***", parts.query, flags=re.IGNORECASE)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def password_of(dsn: str | None) -> str | None:
    if not dsn:
        return None
    if "://" not in dsn:
        match = _KV_PASSWORD.search(dsn)
        return match.group(2).strip("'") if match else None
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return None
    from urllib.parse import parse_qs, unquote

    if parts.password:
        return unquote(parts.password)
    values = parse_qs(parts.query).get("password")
    return values[0] if values else None


def scrub(text: str, *secrets: str | None) -> str:
    """Remove every secret from a message (e.g. a password echoed inside a driver error)."""
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    return text
