"""Keep secrets out of output: a DSN's passwords are replaced by *** before anything is printed or logged.

Which text is a password is libpq's call, not a URL library's: libpq ends a URI's password at the first
``@`` or ``/`` only, so ``#`` and ``?`` belong to it, and it percent-decodes it. So the string is read by
libpq's own parser (PQconninfoParse, through psycopg.conninfo), the secret values are
replaced in the text as the user wrote it (the masked text is read back by libpq to prove it), and
messages are scrubbed of every form the secret takes (as written, and decoded).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

# libpq keywords whose values are secrets: the server password and the client key's passphrase
SECRET_KEYWORDS = frozenset({"password", "sslpassword"})
MASK = "***"
URI_PREFIXES = ("postgresql://", "postgres://")
_SPACE = " \t\n\r\v\f"  # C isspace(): what libpq's key=value parser skips
# a secret shorter than this is scrubbed from free text only where a message quotes it whole ("ab"):
# replacing every "ab" in a sentence would garble it
_FREE_TEXT_MIN = 3


class ConninfoError(ValueError):
    """libpq refused a connection string; the message is libpq's (it may quote parts of the string)."""


def parse(dsn: str) -> dict[str, str]:
    """``dsn`` as libpq reads it (keyword -> decoded value, no environment or defaults); ConninfoError with
    libpq's message if it refuses it."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        return {key: str(value) for key, value in conninfo_to_dict(dsn).items()}
    except psycopg.ProgrammingError as exc:
        raise ConninfoError(str(exc)) from None


def redact_url(dsn: str | None) -> str:
    """The DSN (URI or key=value) as written, each password replaced by ***."""
    if not dsn:
        return ""
    spans = _secret_spans(dsn)
    if spans is None:
        from psycopg.conninfo import make_conninfo

        return make_conninfo("", **{key: MASK if key in SECRET_KEYWORDS else value for key, value in parse(dsn).items()})
    return _masked(dsn, spans)


def secrets_of(dsn: str | None) -> tuple[str, ...]:
    """Every form the DSN's passwords take (as written, and as libpq decodes them), longest first: what
    ``scrub`` removes from a message."""
    if not dsn:
        return ()
    found = {dsn[start:end] for start, end in _secret_spans(dsn) or ()}
    if dsn.startswith(URI_PREFIXES):
        found |= {unquote(text) for text in found}
        misread = _misread_span(dsn)
        if misread is not None:
            # the pieces libpq makes of a password it misreads (host, port, database, parameter)
            found.update(re.split(r"[@/?#:,&=]", dsn[misread[0]:misread[1]]))
    try:
        found |= {value for key, value in parse(dsn).items() if key in SECRET_KEYWORDS}
    except ConninfoError:
        pass
    found = {text for text in found if text and text != MASK}
    return tuple(sorted(found, key=len, reverse=True))


def scrub(text: str, *secrets: str | None) -> str:
    """``text`` without any of ``secrets`` (e.g. a password echoed inside a driver error), nor any quoted
    piece of one (libpq quotes the part of a string it could not read)."""
    kept = [secret for secret in secrets if secret]
    for secret in sorted(kept, key=len, reverse=True):
        if len(secret) >= _FREE_TEXT_MIN:
            text = text.replace(secret, MASK)
    for quote in ('"', "'"):
        pieces = text.split(quote)
        # pieces[1], pieces[3], ...: the quoted ones
        for index in range(1, len(pieces) - 1, 2):
            if len(pieces[index]) >= 2 and any(pieces[index] in secret for secret in kept):
                pieces[index] = MASK
        text = quote.join(pieces)
    return text


def misread_password(dsn: str) -> bool:
    """Whether libpq reads what is plainly meant as a URI's password otherwise: an ``@`` after the first
    ``:`` and outside the query, that libpq does not take for the end of the user info because a ``/`` or
    ``@`` came first (``postgresql://user:pa/ss@host/db``: libpq reads host "user", port "pa", database
    "ss@host/db"). Such a URL cannot mean what it says, and libpq's errors would quote the pieces."""
    return _misread_span(dsn) is not None and _readable(dsn)


# --- where the secrets are in the text --------------------------------------------------------------------
def _secret_spans(dsn: str) -> list[tuple[int, int]] | None:
    """(start, end) of each secret value in ``dsn`` as written; None when libpq reads a secret this could
    not locate in the text (then only libpq's reading of it can be shown)."""
    try:
        parsed: dict[str, str] | None = parse(dsn)
    except ConninfoError:
        parsed = None
    if dsn.startswith(URI_PREFIXES):
        exact = _uri_spans(dsn)
        misread = _misread_span(dsn)
        extra = [misread] if misread is not None else []
    else:
        exact = [(start, end) for key, start, end in _keyword_value_spans(dsn) if key in SECRET_KEYWORDS]
        extra = []
        if parsed is None and exact:
            # libpq stopped reading somewhere: whatever follows the first password may be part of it
            exact = [(exact[0][0], len(dsn))]
    if parsed is not None and not _proven(dsn, parsed, exact):
        return None
    return exact + extra


def _proven(dsn: str, parsed: dict[str, str], spans: list[tuple[int, int]]) -> bool:
    """libpq reads the masked text as the original with every secret replaced, and nothing else changed."""
    if not any(key in SECRET_KEYWORDS for key in parsed):
        return True
    try:
        again = parse(_masked(dsn, spans))
    except ConninfoError:
        return False
    def kept(key: str, value: str) -> bool:
        if key not in SECRET_KEYWORDS:
            return again[key] == value
        return again[key] == MASK or again[key] == value == ""  # an empty password has nothing to hide

    return again.keys() == parsed.keys() and all(kept(key, value) for key, value in parsed.items())


def _masked(dsn: str, spans: list[tuple[int, int]]) -> str:
    merged: list[list[int]] = []
    for start, end in sorted(span for span in spans if span[1] > span[0]):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, position = [], 0
    for start, end in merged:
        out += [dsn[position:start], MASK]
        position = end
    out.append(dsn[position:])
    return "".join(out)


def _after_prefix(dsn: str) -> int:
    return len(next(prefix for prefix in URI_PREFIXES if dsn.startswith(prefix)))


def _libpq_userinfo_end(dsn: str) -> int | None:
    """The ``@`` ending a URI's user info, where libpq finds it (the first ``@`` before any ``/``)."""
    for position in range(_after_prefix(dsn), len(dsn)):
        if dsn[position] == "/":
            return None
        if dsn[position] == "@":
            return position
    return None


def _uri_spans(dsn: str) -> list[tuple[int, int]]:
    """The password of a URI's user info and the values of its password parameters, as libpq splits it."""
    start = _after_prefix(dsn)
    spans = []
    after = start
    at = _libpq_userinfo_end(dsn)
    if at is not None:
        colon = dsn.find(":", start, at)
        if colon >= 0:
            spans.append((colon + 1, at))
        after = at + 1
    query = dsn.find("?", after)
    if query >= 0:
        position = query + 1
        for parameter in dsn[query + 1:].split("&"):
            key, equals, _ = parameter.partition("=")
            if equals and unquote(key) in SECRET_KEYWORDS:
                spans.append((position + len(key) + 1, position + len(parameter)))
            position += len(parameter) + 1
    return spans


def _readable(dsn: str) -> bool:
    try:
        parse(dsn)
    except ConninfoError:
        return False
    return True


def _misread_span(dsn: str) -> tuple[int, int] | None:
    """What a person would call a URI's password where libpq reads it otherwise (see misread_password); in a
    URI libpq refuses, whatever might be one."""
    if not dsn.startswith(URI_PREFIXES):
        return None
    rough = _rough_password_span(dsn)
    at = _libpq_userinfo_end(dsn)
    if rough is None or at == rough[1]:
        return None
    query = dsn.find("?", _after_prefix(dsn) if at is None else at + 1)
    if 0 <= query < rough[1] and _readable(dsn):
        return None  # the '@' is in a query parameter's value, where libpq reads it as such
    return rough


def _rough_password_span(dsn: str) -> tuple[int, int] | None:
    """What follows the first ``:`` of the text up to the URI's last ``@``: its password, to a reader."""
    start = _after_prefix(dsn)
    at = dsn.rfind("@")
    if at < start:
        return None
    colon = dsn.find(":", start, at)
    return (colon + 1, at) if colon >= 0 else None


def _keyword_value_spans(dsn: str) -> list[tuple[str, int, int]]:
    """(keyword, start, end) of each value of a key=value string, as libpq's parser delimits it (up to where
    it would stop on an error)."""
    spans, position, length = [], 0, len(dsn)
    while position < length:
        if dsn[position] in _SPACE:
            position += 1
            continue
        keyword_start = position
        while position < length and dsn[position] != "=" and dsn[position] not in _SPACE:
            position += 1
        keyword = dsn[keyword_start:position]
        while position < length and dsn[position] in _SPACE:
            position += 1
        if position >= length or dsn[position] != "=":
            break
        position += 1
        while position < length and dsn[position] in _SPACE:
            position += 1
        value_start = position
        if position < length and dsn[position] == "'":
            position += 1
            while position < length and dsn[position] != "'":
                position += 2 if dsn[position] == "\\" else 1
            position += 1
        else:
            while position < length and dsn[position] not in _SPACE:
                position += 2 if dsn[position] == "\\" else 1
        position = min(position, length)
        spans.append((keyword, value_start, position))
    return spans
