"""PII keys for a run: from the environment to PostgreSQL session settings, never stored in the database.

Migrations that call the PII functions need ``mercurio.pii_key`` (``encrypt_pii``/``decrypt_pii``) or
``mercurio.hmac_key`` (``hmac_sha256``/``get_hmac_key``) for their session. :func:`session_settings`
builds those from ``MERCURIO_PII_KEY``, ``MERCURIO_PII_OLD_KEYS`` and ``MERCURIO_HMAC_KEY`` for
``database.connect(url, options=...)``. On the embedded default only, missing keys are generated once
into ``.mercurio/keys`` (mode 0600) for development. Key values are never printed or logged.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

from mercurio_migrate.errors import UsageError

PII_KEY_ENV = "MERCURIO_PII_KEY"
PII_OLD_KEYS_ENV = "MERCURIO_PII_OLD_KEYS"
HMAC_KEY_ENV = "MERCURIO_HMAC_KEY"

SETTING_FOR_ENV = {
    PII_KEY_ENV: "mercurio.pii_key",
    PII_OLD_KEYS_ENV: "mercurio.pii_old_keys",
    HMAC_KEY_ENV: "mercurio.hmac_key",
}
_ENV_FOR_SETTING = {setting: env_name for env_name, setting in SETTING_FOR_ENV.items()}

# Function name -> the environment variable its SQL body reads
FUNCTION_KEYS = {
    "encrypt_pii": PII_KEY_ENV,
    "decrypt_pii": PII_KEY_ENV,
    "pii_current_key": PII_KEY_ENV,
    "hmac_sha256": HMAC_KEY_ENV,
    "get_hmac_key": HMAC_KEY_ENV,
}

MIN_KEY_LENGTH = 32
# Keys travel as `-c name=value` startup options (split on whitespace) and old keys are comma-separated,
# so only base64/base64url/hex characters are allowed
_KEY_CHARS = re.compile(r"[A-Za-z0-9+/=_.-]+")
KEYS_FILE = "keys"


class SessionSettings(dict):
    """Session settings (setting name -> value) for ``database.connect(options=...)``, plus what to tell
    the user (e.g. that development keys were generated). Its repr hides the values."""

    def __init__(self, values: dict[str, str] | None = None, messages: Iterable[str] = ()):
        super().__init__(values or {})
        self.messages: tuple[str, ...] = tuple(messages)

    @property
    def message(self) -> str | None:
        return "; ".join(self.messages) or None

    def __repr__(self) -> str:
        return f"SessionSettings({sorted(self)}, messages={list(self.messages)})"

    __str__ = __repr__


# --- which migrations need which keys -------------------------------------------------------------------
def _function_names(tree) -> list[str]:
    from mercurio_migrate.sqlscript import function_names

    return function_names(tree)


def _bodies(statement) -> Iterable[str]:
    """SQL inside DO blocks and function bodies, which the outer parse sees only as a string."""
    fields = statement.fields
    options = [o.get("DefElem", {}) for o in (fields.get("args") if statement.kind == "DoStmt"
                                              else fields.get("options")) or ()]
    if statement.kind == "CreateFunctionStmt":
        language = next((o.get("arg", {}).get("String", {}).get("sval", "sql") for o in options
                         if o.get("defname") == "language"), "sql")
        if language.lower() not in ("sql", "plpgsql"):
            return
    elif statement.kind != "DoStmt":
        return
    for option in options:
        if option.get("defname") != "as":
            continue
        arg = option.get("arg", {})
        if "String" in arg:
            yield arg["String"].get("sval", "")
        else:
            for item in arg.get("List", {}).get("items", [])[:1]:
                yield item.get("String", {}).get("sval", "")


def _plpgsql_function_names(body: str) -> set[str]:
    """Calls inside a PL/pgSQL body: its SQL expressions are parsed by PostgreSQL's own PL/pgSQL parser."""
    import json

    from pglast import parse_plpgsql
    from pglast.parser import parse_sql_json

    found: set[str] = set()
    try:
        tree = parse_plpgsql(f"CREATE FUNCTION mercurio_probe() RETURNS void LANGUAGE plpgsql AS $mm$ {body} $mm$")
    except Exception:  # noqa: BLE001 - not PL/pgSQL: try it as plain SQL below
        tree = None
    if tree is None:
        try:
            found.update(_function_names(json.loads(parse_sql_json(body))))
        except Exception:  # noqa: BLE001 - a body we cannot parse is judged by the engine, not here
            pass
        return found

    def walk(value):
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "query" and isinstance(item, str):
                    found.update(_expression_names(item))
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(tree)
    return found


def _expression_names(query: str) -> set[str]:
    """Names called in a PL/pgSQL expression: a statement, an expression, or an assignment `target := expr`."""
    import json

    from pglast.parser import parse_sql_json

    assigned = query.split(":=", 1)[1] if ":=" in query else query
    for candidate in (query, f"SELECT {query}", f"SELECT {assigned}"):
        try:
            return set(_function_names(json.loads(parse_sql_json(candidate))))
        except Exception:  # noqa: BLE001 - PL/pgSQL expressions are not all full statements
            continue
    return set()


def keys_needed(sql: object) -> set[str]:
    """The environment variables a migration's statements need: decided from the parsed statements
    (calls to encrypt_pii, decrypt_pii, hmac_sha256, get_hmac_key, including inside DO blocks)."""
    from mercurio_migrate.sqlscript import Script, parse

    if isinstance(sql, Script):
        script, text = sql, sql.text
    else:
        text = getattr(sql, "text", None)
        if text is None:
            text = getattr(getattr(sql, "migration", None), "text", None)
        text, script = (text if text is not None else str(sql)), None
    lowered = text.lower()
    if not any(name in lowered for name in FUNCTION_KEYS):
        return set()  # a call needs the function's name in the text; the parse tree decides when it is there
    if script is None:
        script = parse(text, getattr(sql, "path", "<sql>"))
    needed: set[str] = set()
    for statement in script.statements:
        names = set(_function_names(statement.tree))
        if statement.kind == "CreateFunctionStmt":
            names = set()  # defining a function that calls encrypt_pii does not call it
        elif statement.kind == "DoStmt":
            for body in _bodies(statement):
                names |= _plpgsql_function_names(body)
        needed |= {FUNCTION_KEYS[name] for name in names if name in FUNCTION_KEYS}
    return needed


def needs_keys(sql: object) -> bool:
    """Whether running ``sql`` (text, a parsed Script, a SqlFile or a Migration) calls the PII functions."""
    return bool(keys_needed(sql))


# --- where keys come from --------------------------------------------------------------------------------
def keys_file(home: Path | None = None) -> Path:
    from mercurio_migrate.embedded import default_home

    return (home or default_home()) / KEYS_FILE


def _read_keys_file(path: Path) -> dict[str, str]:
    try:
        info = path.stat()
    except FileNotFoundError:
        return {}
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UsageError(f"{path} holds development PII keys but others can read it",
                         hint=f"chmod 600 {path}")
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name in SETTING_FOR_ENV:
            values[name] = value
    return values


def lookup(env_name: str, home: Path | None = None) -> str | None:
    """A key from the environment, else from the embedded default's development keys file (if present)."""
    value = os.environ.get(env_name)
    if value:
        return value
    return _read_keys_file(keys_file(home)).get(env_name) or None


def _write_dev_keys(path: Path, missing: set[str]) -> dict[str, str]:
    """Create the keys file once (atomically: a concurrent run either wins or reads the winner's file)."""
    import secrets  # here: key generation is rare, and these imports cost every command start
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    values = {name: secrets.token_urlsafe(48) for name in (PII_KEY_ENV, HMAC_KEY_ENV)}
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".keys-")
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write("# Development PII keys generated by mercurio-migrate for the embedded database only.\n"
                      "# Never use them for real data; set MERCURIO_PII_KEY and MERCURIO_HMAC_KEY instead.\n")
            for name, value in values.items():
                out.write(f"{name}={value}\n")
        os.link(temp, path)
        return values
    except FileExistsError:
        return _read_keys_file(path)
    finally:
        os.unlink(temp)


def _usable(env_name: str, value: str) -> bool:
    parts = value.split(",") if env_name == PII_OLD_KEYS_ENV else [value]
    return all(len(part) >= MIN_KEY_LENGTH and _KEY_CHARS.fullmatch(part) for part in parts)


def unusable_key(setting: str, value: str) -> bool:
    """Whether ``setting`` is a PII key setting (``mercurio.pii_key``, …) whose value is not a usable key:
    such a value is never sent to a server (it could end the startup option it travels in)."""
    env_name = _ENV_FOR_SETTING.get(setting)
    return env_name is not None and not _usable(env_name, value)


def _check_key(env_name: str, value: str) -> None:
    if not _usable(env_name, value):
        which = "a key in " + env_name if env_name == PII_OLD_KEYS_ENV else env_name
        raise UsageError(
            f"{which} is not a usable key: it needs at least {MIN_KEY_LENGTH} characters of "
            "A-Z a-z 0-9 + / = _ . - (no spaces, tabs, line breaks or commas); nothing was run",
            hint='Generate one with: python -c "import secrets; print(secrets.token_urlsafe(48))"',
        )


def check_usable(scripts: object, *, embedded: bool) -> None:
    """Before anything runs: UsageError naming the variable (never its value) when a key that ``scripts``
    need is set (in the environment, or on the embedded default in its keys file) but is not usable. For
    the commands that run migrations on a scratch database (verify, drift, dump, explain)."""
    wanted = set().union(*(needed for _, needed in _needed_by(scripts)))
    if PII_KEY_ENV in wanted:
        wanted.add(PII_OLD_KEYS_ENV)
    for env_name in SETTING_FOR_ENV:
        if env_name in wanted:
            value = lookup(env_name) if embedded else os.environ.get(env_name)
            if value:
                _check_key(env_name, value)


def _needed_by(sources: object) -> list[tuple[str, set[str]]]:
    """(name, keys needed) for each migration or script given."""
    if isinstance(sources, bool):
        return [("the migration", {PII_KEY_ENV, HMAC_KEY_ENV})] if sources else []
    if sources is None:
        return []
    if isinstance(sources, str) or not isinstance(sources, Iterable):
        sources = [sources]
    result = []
    for source in sources:
        if source is None:  # e.g. a migration without rollback.sql or fixture.sql
            continue
        name = getattr(source, "id", None) or str(getattr(source, "path", "the migration"))
        needed = keys_needed(source)
        if needed:
            result.append((name, needed))
    return result


def session_settings(settings, scripts: object) -> SessionSettings:
    """Session settings carrying the PII keys that ``scripts`` need.

    ``scripts``: True/False, SQL text, a parsed Script, a Migration, or an iterable of them (e.g. the
    pending migrations). Against a DATABASE_URL a missing key raises UsageError naming the variable and
    the migration, before anything runs. On the embedded default (``settings.database_url is None``)
    missing keys are generated once into ``.mercurio/keys`` and the returned ``message`` says so.
    """
    needs = _needed_by(scripts)
    wanted = set().union(*(n for _, n in needs)) if needs else set()
    if not wanted:
        return SessionSettings()
    embedded = getattr(settings, "database_url", None) is None
    values: dict[str, str] = {}
    messages: list[str] = []
    for env_name in SETTING_FOR_ENV:
        value = os.environ.get(env_name)
        if value:
            values[env_name] = value
    missing = {name for name in wanted if name not in values}
    if missing and embedded:
        path = keys_file()
        stored = _read_keys_file(path)
        if not all(stored.get(name) for name in missing):
            stored = _write_dev_keys(path, missing)
            messages.append(f"generated development PII keys in {path} (mode 0600, embedded database only); "
                            f"set {PII_KEY_ENV} and {HMAC_KEY_ENV} for real data")
        for name in missing:
            if stored.get(name):
                values[name] = stored[name]
        if PII_OLD_KEYS_ENV not in values and stored.get(PII_OLD_KEYS_ENV):
            values[PII_OLD_KEYS_ENV] = stored[PII_OLD_KEYS_ENV]
        missing = {name for name in wanted if name not in values}
    if missing:
        first = sorted(missing)[0]
        users = [name for name, needed in needs if first in needed]
        raise UsageError(
            f"{first} is not set, and {users[0]} needs it"
            + (f" (as do {len(users) - 1} more)" if len(users) > 1 else "")
            + "; nothing was run",
            hint=f"Export {' and '.join(sorted(missing))} (at least {MIN_KEY_LENGTH} characters each). The keys "
                 "reach the server only as session settings for this run; they are never stored.",
        )
    # only the keys the scripts need (and the retired keys that decrypt with the PII key): a malformed key
    # that nothing here uses stops nothing
    if PII_KEY_ENV in wanted:
        wanted.add(PII_OLD_KEYS_ENV)
    values = {name: value for name, value in values.items() if name in wanted}
    for env_name, value in values.items():
        _check_key(env_name, value)
    return SessionSettings({SETTING_FOR_ENV[name]: value for name, value in values.items()}, messages)
