"""Property-based tests (hypothesis): discovery, naming, header parsing and statement splitting."""

from __future__ import annotations

import string
from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from mercurio_migrate.layout import MAX_FOLDER_NAME, check_folder_name, discover, parse_header
from mercurio_migrate.sqlscript import line_column, parse

names = st.from_regex(r"[a-z][a-z0-9]{0,8}(_[a-z0-9]{1,8}){0,4}", fullmatch=True)
stamps = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31))


@given(stamps, names)
def test_every_valid_folder_name_is_accepted(stamp, name):
    folder = f"{stamp:%Y%m%d_%H%M%S}_{name}"
    assert check_folder_name(folder) == (f"{stamp:%Y%m%d_%H%M%S}", name)


@given(st.text(max_size=120))
def test_any_folder_name_gives_a_verdict_never_an_exception(text):
    verdict = check_folder_name(text)
    if isinstance(verdict, tuple):
        version, name = verdict
        assert text == f"{version}_{name}" and len(text) <= MAX_FOLDER_NAME
        datetime.strptime(version, "%Y%m%d_%H%M%S")
    else:
        assert verdict


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(stamps, names), min_size=1, max_size=6, unique_by=lambda x: x[0].replace(microsecond=0)))
def test_discovery_orders_by_version_and_keeps_every_folder(tmp_path_factory, entries):
    root = tmp_path_factory.mktemp("m")
    for stamp, name in entries:
        folder = root / f"{stamp:%Y%m%d_%H%M%S}_{name}"
        folder.mkdir()
        (folder / "migration.sql").write_text(f"SELECT '{name}';")
    found = discover(root)
    versions = [m.version for m in found.migrations]
    assert versions == sorted(f"{s:%Y%m%d_%H%M%S}" for s, _ in entries)


header_values = st.text(alphabet=string.ascii_letters + string.digits + " .,:/()-'", min_size=1, max_size=40).map(
    str.strip).filter(bool)


@given(st.fixed_dictionaries({k: header_values for k in ("migration", "purpose", "author", "date", "requirements")}))
def test_header_round_trip(values):
    text = "".join(f"-- {key.capitalize()}: {value}\n" for key, value in values.items()) + "\nBEGIN;\nCOMMIT;\n"
    assert parse_header(text) == values


# --- statement splitting ------------------------------------------------------------------------------
tricky_text = st.text(alphabet="ab;'\"$-/*\n é", max_size=12)
literals = st.one_of(
    tricky_text.map(lambda s: "'" + s.replace("'", "''") + "'"),
    tricky_text.filter(lambda s: "$q$" not in s and not s.endswith("$")).map(lambda s: f"$q${s}$q$"),
    st.integers(-1000, 1000).map(str),
)
statements = st.one_of(
    literals.map(lambda lit: f"SELECT {lit}"),
    st.tuples(names, literals).map(lambda t: f"INSERT INTO {t[0]} VALUES ({t[1]})"),
    names.map(lambda n: f"CREATE TABLE {n} (id bigint PRIMARY KEY)"),
    st.just("BEGIN"), st.just("COMMIT"),
)
separators = st.sampled_from([";\n", ";", ";\n\n", "; -- trailing ; comment\n", ";\n/* block ; comment */\n", ";  \n"])


@settings(max_examples=200)
@given(st.lists(st.tuples(statements, separators), min_size=1, max_size=8), st.sampled_from(["", "-- head\n", "\n\n"]))
def test_split_then_rejoin_preserves_the_sql_and_positions(parts, head):
    text = head + "".join(stmt + sep for stmt, sep in parts)
    script = parse(text, "p.sql")
    assert [s.text for s in script.statements] == [stmt for stmt, _ in parts]
    rebuilt, cursor = [], 0
    for statement in script.statements:
        rebuilt.append(text[cursor:statement.start])
        rebuilt.append(statement.text)
        cursor = statement.end
    rebuilt.append(text[cursor:])
    assert "".join(rebuilt) == text
    for statement in script.statements:
        line, column = line_column(text, statement.start)
        assert (statement.line, statement.column) == (line, column)
        assert text.splitlines()[line - 1][column - 1:].startswith(statement.text.splitlines()[0])
