"""Secrets stay secret: PII keys and DSN passwords never appear in any output, log or table."""

from __future__ import annotations

import subprocess
from urllib.parse import quote

import pytest

from conftest import MIGRATIONS, TEST_KEYS, write_migration
from mercurio_migrate.embedded import find_bindir


def test_pii_keys_appear_in_no_output_and_nowhere_in_the_database(cli, db, database_url, pg_cluster, tmp_path):
    runs = [
        cli("--dir", str(MIGRATIONS), "up", "--validate-each"),
        cli("--dir", str(MIGRATIONS), "--json", "status"),
        cli("--dir", str(MIGRATIONS), "log"),
        cli("--dir", str(MIGRATIONS), "--json", "up", "--dry-run"),
        cli("--dir", str(MIGRATIONS), "down", "--steps", "3"),
        cli("--dir", str(MIGRATIONS), "--json", "up"),
        cli("--dir", str(MIGRATIONS), "up", "--dry-run", env={"MERCURIO_VERBOSE": "1"}),
    ]
    for result in runs:
        assert result.returncode == 0, result.stderr
        everything = result.stdout + result.stderr
        for key in TEST_KEYS.values():
            assert key not in everything
    # the whole database, schema and data, as text: no key anywhere
    database = database_url.split("/")[-1].split("?")[0]
    dump = subprocess.run([str(find_bindir() / "pg_dump"), "-h", str(pg_cluster.socket_dir), "-U", "postgres",
                           database], capture_output=True, text=True, check=True).stdout
    assert "encrypt_pii" in dump  # the dump is real
    for key in TEST_KEYS.values():
        assert key not in dump
    settings = db.execute("SELECT count(*) FROM pg_db_role_setting s, unnest(s.setconfig) c "
                          "WHERE c LIKE 'mercurio.%'").fetchone()[0]
    assert settings == 0
    server_log = (pg_cluster.log_file).read_text(errors="replace")
    for key in TEST_KEYS.values():
        assert key not in server_log


def test_keys_reach_the_session_but_not_pg_stat_activity(cli, db, tmp_path):
    root = tmp_path / "m"
    (root / "20250101_000000_probe").mkdir(parents=True)
    (root / "20250101_000000_probe" / "migration.sql").write_text(
        "CREATE TABLE probe AS SELECT a.query, a.application_name,\n"
        "  current_setting('mercurio.hmac_key', true) IS NOT NULL AS has_key\n"
        "FROM pg_stat_activity a WHERE a.pid = pg_backend_pid();\n")
    result = cli("--dir", str(root), "up")
    assert result.returncode == 0, result.stderr
    query, application_name, has_key = db.execute("SELECT * FROM probe").fetchone()
    assert has_key is True
    for key in TEST_KEYS.values():
        assert key not in query and key not in application_name


# --- DSN passwords libpq accepts: every command, every way it reports -----------------------------------
# '#' and '?' end a password for a URL library but not for libpq; each piece is long enough to search for
PASSWORD = "Pwd1#Frag2?Part3"
PIECES = ("Pwd1", "Frag2", "Part3")
# (arguments, exit codes when it connects and works), for every command that connects to the database
COMMANDS = {
    "status": (("status",), {0}),
    "log": (("log",), {0}),
    "up": (("up",), {0}),
    "down": (("down",), {0}),
    "resolve": (("resolve", "20250101_000000_a", "--applied"), {0, 2}),  # 2: already recorded, a second time
    "verify": (("verify", "--keep"), {0}),
    "drift": (("drift",), {0, 1}),
    "dump": (("dump",), {0}),
    "explain": (("explain", "--rows", "100", "--keep"), {0}),
    "indexes": (("indexes",), {0}),
    "preflight": (("preflight",), {2}),  # no legacy_user_table: a clear error after connecting
}


def _password_url(database_url: str, password: str, *, form: str = "uri") -> str:
    """The test database's URL with a password (the test server trusts local connections, so any
    password connects). form: uri (user:password@, as given), query (?password=, percent-encoded here),
    keyword (a key=value string, quoted here)."""
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(database_url)
    database, port = parts["dbname"], parts["port"]
    host = quote(parts["host"], safe="")
    if form == "uri":
        return f"postgresql://postgres:{password}@/{database}?host={host}&port={port}"
    if form == "query":
        return f"postgresql://postgres@/{database}?host={host}&port={port}&password={quote(password, safe='')}"
    escaped = password.replace("\\", "\\\\").replace("'", "\\'")
    return f"host={parts['host']} port={port} user=postgres dbname={database} password='{escaped}'"


def _assert_hidden(result, *pieces: str) -> None:
    everything = result.stdout + result.stderr
    for piece in pieces:
        assert piece not in everything, f"{piece!r} shown:\n{everything}"
    assert "Traceback" not in everything


@pytest.fixture
def kept_scratch_dropped(pg_cluster):
    """verify --keep and explain --keep leave their scratch databases (their URL is what is shown): dropped
    after the test, since other tests count the server's scratch databases."""
    import psycopg

    query = "SELECT datname FROM pg_database WHERE datname LIKE 'mercurio_verify_%'"
    with psycopg.connect(pg_cluster.conninfo("postgres"), autocommit=True) as admin:
        before = set(admin.execute(query).fetchall())
    yield
    with psycopg.connect(pg_cluster.conninfo("postgres"), autocommit=True) as admin:
        for (name,) in set(admin.execute(query).fetchall()) - before:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def one_migration(tmp_path):
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_a", "CREATE TABLE a (id bigint PRIMARY KEY);", "DROP TABLE a;")
    return root


def test_a_password_with_hash_and_question_mark_is_never_shown(cli, database_url, one_migration, pg_cluster,
                                                               kept_scratch_dropped):
    """Every command, as text and as JSON, with the password as written (libpq takes '#' and '?' as part of
    it); where the URL is shown (indexes, drift, verify --keep, explain --keep) also with the password
    percent-encoded in the user info or in a password parameter, and quoted in a key=value string."""
    raw = _password_url(database_url, PASSWORD)
    runs = [(raw, args, codes, as_json) for args, codes in COMMANDS.values() for as_json in ((), ("--json",))]
    runs += [(_password_url(database_url, quote(PASSWORD, safe="") if form == "uri" else PASSWORD, form=form),
              *COMMANDS[command], as_json)
             for form in ("uri", "query", "keyword") for command in ("indexes", "drift", "verify", "explain")
             for as_json in ((), ("--json",))]
    for url, args, codes, as_json in runs:
        result = cli("--dir", str(one_migration), *as_json, *args, database_url=url)
        assert result.returncode in codes, (args, result.stdout + result.stderr)
        _assert_hidden(result, PASSWORD, quote(PASSWORD, safe=""), *PIECES)
        if args[0] in ("indexes", "drift") or (args[0] in ("verify", "explain") and not as_json):
            assert "***" in result.stdout, (url, args)  # the URL is shown, its password replaced
    server_log = pg_cluster.log_file.read_text(errors="replace")
    assert not any(piece in server_log for piece in PIECES)


@pytest.mark.parametrize("command", COMMANDS)
def test_connection_errors_never_show_the_password(cli, database_url, one_migration, tmp_path, command):
    args, _ = COMMANDS[command]
    no_server = quote(str(tmp_path / "no-server-here"), safe="")
    nowhere = f"{database_url.split('?host=')[0]}?host={no_server}&port=5432"
    for password in (PASSWORD, quote(PASSWORD, safe="")):
        url = _password_url(nowhere, password)
        for as_json in ((), ("--json",)):
            result = cli("--dir", str(one_migration), *as_json, *args, database_url=url)
            assert result.returncode == 1, result.stdout + result.stderr
            assert "No such file or directory" in result.stdout + result.stderr
            assert "postgres:***@" in result.stdout + result.stderr
            _assert_hidden(result, password, *PIECES)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_url_libpq_refuses_or_misreads_is_reported_without_its_password(cli, database_url, one_migration, db,
                                                                          command):
    args, _ = COMMANDS[command]
    cases = [
        # a space libpq refuses in a URL, and it quotes the password in its message
        (_password_url(database_url, "Pwd1 Frag2#Part3"), "not valid"),
        (_password_url(database_url, "Pwd1 Frag2", form="keyword").replace("'", ""), "not valid"),
        # a malformed percent-encoding: libpq quotes the password as written
        (_password_url(database_url, "Pwd1%23Frag2%zzPart3"), "not valid"),
        # libpq ends the password at '/' or '@': it would read Frag2... as the port or the host
        (_password_url(database_url, "Pwd1/Frag2#Part3"), "Percent-encode"),
        (_password_url(database_url, "Pwd1@Frag2#Part3"), "Percent-encode"),
    ]
    for url, needle in cases:
        for as_json in ((), ("--json",)):
            result = cli("--dir", str(one_migration), *as_json, *args, database_url=url)
            assert result.returncode == 2, result.stdout + result.stderr
            assert needle in result.stdout + result.stderr
            _assert_hidden(result, *PIECES)
    assert db.execute("SELECT to_regclass('a')").fetchone()[0] is None  # nothing ran


# --- PII keys that are not usable ---------------------------------------------------------------------------
BAD_KEYS = {
    "tab": "abcdefghijklmnopqrstuvwxyz012345\tKeyPieceAfterTab00",
    "newline": "abcdefghijklmnopqrstuvwxyz012345\nKeyPieceAfterNewline",
    "space": "abcdefghijklmnopqrstuvwxyz012345 KeyPieceAfterSpace00",
    "option": "abcdefghijklmnopqrstuvwxyz012345 -c KeyPieceOption=1",
}


def test_a_malformed_key_breaks_no_command_that_needs_none(cli, one_migration, pg_cluster):
    for key in BAD_KEYS.values():
        piece = key.split()[-1]
        env = {"MERCURIO_PII_KEY": key, "MERCURIO_HMAC_KEY": key}
        for args in (("up",), ("log",), ("--json", "status"), ("indexes",), ("verify",), ("drift",),
                     ("--json", "down")):
            result = cli("--dir", str(one_migration), *args, env=env)
            assert result.returncode == 0, result.stdout + result.stderr
            _assert_hidden(result, piece)
        assert piece not in pg_cluster.log_file.read_text(errors="replace")


@pytest.mark.parametrize("bad", BAD_KEYS)
def test_a_malformed_key_a_migration_needs_is_named_and_nothing_runs(cli, db, tmp_path, pg_cluster, bad):
    key = BAD_KEYS[bad]
    piece = key.split()[-1]
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_pii", "CREATE TABLE secret_probe AS SELECT encrypt_pii('x') AS v;",
                    "DROP TABLE secret_probe;")
    env = {"MERCURIO_PII_KEY": key}
    for args in (("up",), ("--json", "up"), ("verify",), ("--json", "explain", "--rows", "100")):
        result = cli("--dir", str(root), *args, env=env)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "MERCURIO_PII_KEY is not a usable key" in result.stdout + result.stderr
        _assert_hidden(result, piece, key)
    assert db.execute("SELECT to_regclass('secret_probe')").fetchone()[0] is None
    assert db.execute("SELECT to_regclass('public.mercurio_migrations')").fetchone()[0] is None
    assert piece not in pg_cluster.log_file.read_text(errors="replace")


def test_startup_options_carry_any_white_space_in_a_setting(database_url):
    """A session setting's value reaches the server whole, whatever white space it holds (the server splits
    the `options` string on every kind of white space, not only on spaces)."""
    from mercurio_migrate.database import connect

    value = "a b\tc\nd\\e"
    with connect(database_url, options={"mercurio.probe": value}) as conn:
        assert conn.execute("SELECT current_setting('mercurio.probe')").fetchone()[0] == value


def test_a_malformed_key_that_nothing_needs_stops_nothing(cli, db, tmp_path):
    """Only the keys the pending migrations use are checked: a malformed MERCURIO_HMAC_KEY does not stop a
    migration that needs only MERCURIO_PII_KEY, and the PII key reaches its session whole."""
    root = tmp_path / "m"
    write_migration(root, "20250101_000000_stub", "CREATE FUNCTION encrypt_pii(v text) RETURNS text LANGUAGE sql "
                    "AS $$ SELECT v || ':' || current_setting('mercurio.pii_key') $$;")
    write_migration(root, "20250101_000001_use", "CREATE TABLE probe AS SELECT encrypt_pii('x') AS v;")
    result = cli("--dir", str(root), "up", env={"MERCURIO_HMAC_KEY": BAD_KEYS["tab"]})
    assert result.returncode == 0, result.stdout + result.stderr
    assert db.execute("SELECT v FROM probe").fetchone()[0] == "x:" + TEST_KEYS["MERCURIO_PII_KEY"]
