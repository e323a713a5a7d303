"""``mercurio-migrate lint``: static checks of migration folders and SQL files, no database needed.

Each file is parsed once (pglast); the schema earlier migrations leave behind is replayed from their
statements, so a rule can tell a table that existed before the migration (where locks hurt) from one the
same file created a few lines earlier. Rules live one per module in ``lint/rules``; their docstrings are
the documentation (``python -m mercurio_migrate.lint.docs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path

from mercurio_migrate.errors import UsageError
from mercurio_migrate.lint.model import SEVERITIES, LintFinding, SqlFile, Stmt, parse_file
from mercurio_migrate.lint.schema import Schema

__all__ = ["LintFinding", "FileContext", "Folder", "LintConfig", "LintResult", "lint_paths", "load_config"]

DEFAULT_TENANT_EXEMPT = ("tenant", "workspace")
DEFAULT_PII_COLUMNS = ("email", "email_address", "phone", "phone_number", "mobile", "mobile_phone",
                       "first_name", "last_name", "full_name", "given_name", "family_name", "middle_name",
                       "date_of_birth", "birth_date", "ssn", "national_id", "street_address", "address",
                       "postal_address", "ip_address")
_CONFIG_KEYS = {"select", "ignore", "severity", "tenant_exempt_tables", "pii_columns"}


@dataclass(frozen=True)
class LintConfig:
    severities: dict[str, str]  # rule id -> error | warning | info (rules that run; others are off)
    tenant_exempt_tables: frozenset[str] = frozenset(DEFAULT_TENANT_EXEMPT)
    pii_columns: frozenset[str] = frozenset(DEFAULT_PII_COLUMNS)


def _rule_list(value, where: str, known: dict) -> list[str]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where} must be a list of rule ids")
    unknown = [v for v in value if v != "all" and v not in known]
    if unknown:
        from mercurio_migrate.lint.rules import registry

        house = [v for v in unknown if v in registry()]
        if house:
            profile = registry()[house[0]].profile
            raise UsageError(f"{where}: {', '.join(house)}: rule(s) of the {profile} profile, which this project "
                             "does not use",
                             hint=f'Set profile = "{profile}" under [tool.mercurio-migrate] in pyproject.toml to '
                                  "use its rules (docs/profile.md), or leave them out.")
        raise UsageError(f"{where}: unknown rule id(s): {', '.join(unknown)}",
                         hint="List the rules with `mercurio-migrate lint --list-rules`.")
    return list(known) if "all" in value else value


def load_config(project: dict | None = None, select: str | None = None, ignore: str | None = None,
                profile: str | None = None) -> LintConfig:
    """Resolve which rules run at which severity: rule defaults, then pyproject, then the command line.
    ``profile`` (Settings.profile): a profile's house rules join the generic ones."""
    from mercurio_migrate.lint.rules import for_profile

    rules = for_profile(profile)
    section = (project or {}).get("lint", {})
    if not isinstance(section, dict):
        raise UsageError("[tool.mercurio-migrate.lint] must be a table")
    unknown_keys = sorted(set(section) - _CONFIG_KEYS)
    if unknown_keys:
        raise UsageError(f"[tool.mercurio-migrate.lint]: unknown key(s) {', '.join(unknown_keys)}",
                         hint=f"Known keys: {', '.join(sorted(_CONFIG_KEYS))}.")
    severities = {rule_id: rule.severity for rule_id, rule in rules.items()}
    overrides = section.get("severity", {})
    if not isinstance(overrides, dict):
        raise UsageError("[tool.mercurio-migrate.lint] severity must be a table of rule id = level")
    for rule_id, level in overrides.items():
        _rule_list([rule_id], "[tool.mercurio-migrate.lint] severity", rules)
        if level not in (*SEVERITIES, "off"):
            raise UsageError(f"[tool.mercurio-migrate.lint] severity.{rule_id} = {level!r}: "
                             f"use one of {', '.join(SEVERITIES)}, off")
        severities[rule_id] = level
    chosen = select if select is not None else section.get("select")
    if chosen is not None:
        where = "--select" if select is not None else "[tool.mercurio-migrate.lint] select"
        picked = _rule_list(chosen, where, rules)
        # an explicitly selected rule runs even when it is off by default
        severities = {r: (severities[r] if severities[r] != "off" else "warning") for r in picked}
    for source, where in ((section.get("ignore"), "[tool.mercurio-migrate.lint] ignore"), (ignore, "--ignore")):
        if source is not None:
            for rule_id in _rule_list(source, where, rules):
                severities.pop(rule_id, None)
    tables = section.get("tenant_exempt_tables", list(DEFAULT_TENANT_EXEMPT))
    pii = section.get("pii_columns", list(DEFAULT_PII_COLUMNS))
    for key, value in (("tenant_exempt_tables", tables), ("pii_columns", pii)):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f"[tool.mercurio-migrate.lint] {key} must be a list of names")
    return LintConfig(severities={r: s for r, s in severities.items() if s != "off"},
                      tenant_exempt_tables=frozenset(t.lower() for t in tables),
                      pii_columns=frozenset(c.lower() for c in pii))


@dataclass
class Folder:
    version: str
    name: str
    path: Path
    migration: SqlFile
    rollback: SqlFile | None


class FileContext:
    """One file as a rule sees it."""

    def __init__(self, file: SqlFile, folder: Folder | None, schema: Schema, config: LintConfig):
        self.file = file
        self.folder = folder
        self.schema = schema  # as earlier migrations left it (for a rollback: as its migration left it)
        self.config = config
        # tables this file creates -> statement index; (table, column) it adds -> statement index
        self.created_at, self.columns_added_at = file.fact("created_at", _created_at)
        self.cache: dict = {}  # facts several rules derive from the same file, computed once
        self.suppressions: list[Suppression] = []
        self._local: Schema | None = None
        self._rule = ("", "")  # (rule id, severity) of the rule running, set by the runner

    @property
    def local(self) -> Schema:
        """The tables this file creates, with the columns it gives them (replayed on first use)."""
        if self._local is None:
            self._local = Schema()
            self._local.apply(self.file)
        return self._local

    @property
    def role(self) -> str:
        return self.file.role

    def existing_table(self, table: str, stmt: Stmt) -> bool:
        """True when the table existed before this file ran (it was not created earlier in the file)."""
        created = self.created_at.get(table)
        return created is None or created >= stmt.index

    def new_column(self, table: str, column: str, stmt: Stmt) -> bool:
        added = self.columns_added_at.get((table, column))
        return not self.existing_table(table, stmt) or (added is not None and added < stmt.index)

    def columns(self, table: str) -> dict | None:
        """Known columns of a table (created in this file or replayed from earlier ones); None if unknown."""
        if ("CreateStmt" in self.file.kinds or "CreateTableAsStmt" in self.file.kinds) and table in self.local.tables:
            return self.local.columns(table)
        return self.schema.columns(table)

    def finding(self, stmt: Stmt | None, message: str, fix: str, node=None, line: int | None = None) -> LintFinding:
        if stmt is None:
            position = (line or 1, 1)
        else:
            position = self.file.position(node, stmt)
        return LintFinding(self._rule[0], self._rule[1], self.file.path, position[0], position[1], message, fix,
                       stmt.index if stmt else None)


def _created_at(file: SqlFile) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    from mercurio_migrate.lint import tree

    created_at: dict[str, int] = {}
    columns_added_at: dict[tuple[str, str], int] = {}
    for stmt in file.of_kind("CreateStmt", "CreateTableAsStmt", "AlterTableStmt"):
        if stmt.kind == "CreateStmt":
            created_at.setdefault(tree.relname(stmt.node.get("relation")), stmt.index)
        elif stmt.kind == "CreateTableAsStmt":
            created_at.setdefault(tree.relname(stmt.node.get("into", {}).get("rel")), stmt.index)
        else:
            table = tree.relname(stmt.node.get("relation"))
            for cmd in tree.alter_commands(stmt.node):
                kind, definition = tree.unwrap(cmd.get("def"))
                if cmd.get("subtype") == "AT_AddColumn" and kind == "ColumnDef":
                    columns_added_at.setdefault((table, definition.get("colname", "")), stmt.index)
    return created_at, columns_added_at


@dataclass
class LintResult:
    findings: list[LintFinding] = field(default_factory=list)
    files: int = 0
    suppressed: int = 0

    @property
    def errors(self) -> int:
        return sum(f.severity == "error" for f in self.findings)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(SEVERITIES, 0)
        for f in self.findings:
            if f.severity in counts:
                counts[f.severity] += 1
        return counts


# --- suppression comments -------------------------------------------------------------------------------
MARKER = "mercurio-lint:"


@dataclass(frozen=True)
class Suppression:
    rule: str
    reason: str
    statement: int | None  # None: the whole file (ignore-file)
    line: int
    column: int
    valid: bool
    problem: str = ""


def suppressions(sql: SqlFile, known: dict) -> list[Suppression]:
    """``-- mercurio-lint: ignore RULE reason`` comments. One before a statement (or trailing on the line a
    statement ends) applies to that statement; ``ignore-file`` applies to the whole file."""
    if MARKER not in sql.text:
        return []
    from pglast.parser import scan

    out: list[Suppression] = []
    for token in scan(sql.text):
        if token.name not in ("SQL_COMMENT", "C_COMMENT"):
            continue
        start = sql.char_offset(token.start)
        body = sql.text[start:sql.char_offset(token.end) + 1]
        body = body[2:] if token.name == "SQL_COMMENT" else body[2:-2]
        body = body.strip()
        if not body.startswith(MARKER):
            continue
        words = body[len(MARKER):].split(None, 2)
        line, column = sql.line_column(start)
        verb = words[0] if words else ""
        rule = words[1] if len(words) > 1 else ""
        reason = words[2].strip() if len(words) > 2 else ""
        statement = None if verb == "ignore-file" else _statement_for(sql, start, line)
        problem = ""
        if verb not in ("ignore", "ignore-file"):
            problem = f"unknown directive {verb!r}: write `-- mercurio-lint: ignore RULE_ID reason`"
        elif rule not in known:
            problem = f"unknown rule id {rule!r} in suppression"
        elif not reason:
            problem = f"suppression of {rule} gives no reason: say why the finding does not apply"
        elif verb == "ignore" and statement is None:
            problem = "suppression is not followed by a statement"
        out.append(Suppression(rule, reason, statement, line, column, not problem, problem))
    return out


def _statement_for(sql: SqlFile, offset: int, line: int) -> int | None:
    previous_end_line = 0
    for stmt in sql.statements:
        if offset < stmt.end:
            if previous_end_line == line and stmt.start > offset:
                return stmt.index - 1  # a trailing comment on the line the previous statement ends
            return stmt.index
        previous_end_line = sql.line_column(stmt.end)[0] if stmt.end else 0
    return sql.statements[-1].index if sql.statements and previous_end_line == line else None


# --- running --------------------------------------------------------------------------------------------
# Rules declare the statement kinds and file roles they can report on (KINDS, ROLES); the runner skips a
# rule for a file that has none of them. Tests turn this off to check that it never changes a finding.
DISPATCH = True


def _run_file(ctx: FileContext, rules: dict, only: str | None, result: LintResult, plans: dict | None = None) -> None:
    from mercurio_migrate.lint.rules import registry

    file = ctx.file
    ctx.suppressions = suppressions(file, registry())
    active = {(s.statement, s.rule) for s in ctx.suppressions if s.valid}
    whole_file = {s.rule for s in ctx.suppressions if s.valid and s.statement is None}
    result.files += file.path == only or only is None
    findings = result.findings
    for rule_id, rule, severity in _applicable(rules, ctx.config, file, {} if plans is None else plans):
        ctx._rule = (rule_id, severity)
        for finding in rule.check(ctx):
            if only is not None and finding.file != only:
                continue
            if (active or whole_file) and (rule_id in whole_file or (finding.statement, rule_id) in active):
                result.suppressed += 1
                continue
            if finding.rule != rule_id or finding.severity != severity:
                finding = LintFinding(rule_id, severity, finding.file, finding.line, finding.column, finding.message,
                                  finding.fix, finding.statement)
            findings.append(finding)


def _applicable(rules: dict, config: LintConfig, file: SqlFile, plans: dict) -> list[tuple[str, object, str]]:
    """(rule id, rule, severity) of the rules to run on the file, in order. It is the same for every file with
    the same statement kinds and role, so ``plans`` (one per run: same rules, same config) keeps it."""
    if file.syntax_error:
        return [("syntax-error", rules["syntax-error"], config.severities["syntax-error"])] if "syntax-error" in rules else []
    key = (file.role, frozenset(file.kinds))
    picked = plans.get(key)
    if picked is None:
        picked = plans[key] = [(rule_id, rule, config.severities[rule_id]) for rule_id, rule in rules.items()
                               if not DISPATCH or rule.applies(file.kinds, file.role)]
    return picked


def _classify(path: Path) -> tuple[str, Path, str | None, Path | None]:
    """(kind, migrations directory or file, selected folder name, selected file)."""
    from mercurio_migrate.layout import check_folder_name

    if not path.exists():
        raise UsageError(f"{path}: no such file or directory", hint="Pass migration folders, SQL files, "
                         "or a migrations directory (default: the configured migrations dir).")
    if path.is_file():
        folder = path.parent
        if path.name in ("migration.sql", "rollback.sql") and isinstance(check_folder_name(folder.name), tuple):
            return "folder", folder.parent, folder.name, path
        return "file", path, None, path
    if not path.is_dir():  # a FIFO would have the reader wait for a writer, a device might never end
        raise UsageError(f"{path}: not a regular file nor a directory, so it is not read",
                         hint="Pass SQL files (a symbolic link to one is fine), migration folders or a migrations "
                              "directory.")
    if isinstance(check_folder_name(path.name), tuple) and (path / "migration.sql").is_file():
        return "folder", path.parent, path.name, None
    return "dir", path, None, None


def lint_paths(paths: list[Path], config: LintConfig) -> LintResult:
    """Lint migration directories, migration folders and SQL files; findings sorted by file and line."""
    from mercurio_migrate.lint.rules import registry

    rules = {rule_id: rule for rule_id, rule in registry().items() if rule_id in config.severities}
    result = LintResult()
    plans: dict = {}  # which rules run on which kind of file (see _applicable)
    directories: dict[Path, dict[str, set] | None] = {}  # dir -> None (all folders) or {folder: files}
    loose: list[Path] = []
    for raw in paths:
        kind, where, folder, file = _classify(Path(raw))
        if kind == "file":
            loose.append(where)
        elif kind == "dir":
            directories[where] = None
        elif directories.get(where, {}) is not None:
            selection = directories.setdefault(where, {})
            selection.setdefault(folder, set()).add(str(file) if file else None)
    for directory, selection in directories.items():
        _lint_directory(directory, selection, rules, config, result, plans)
    for path in loose:
        role = {"migration.sql": "migration", "rollback.sql": "rollback"}.get(path.name, "sql")
        _run_file(FileContext(parse_file(path, _read(path), role), None, Schema(), config), rules, None, result, plans)
    result.findings.sort(key=attrgetter("file", "line", "column", "rule"))
    return result


def _read(path: Path) -> str:
    """A loose SQL file's text, read and checked as ``layout.discover`` reads a migration's files."""
    from mercurio_migrate.layout import read_sql

    problems: list = []
    sql = read_sql(str(path), problems)
    if sql is None:
        raise UsageError(str(problems[0]))  # the problem says what to do
    return sql.text


def _lint_directory(directory: Path, selection: dict[str, set] | None, rules: dict, config: LintConfig,
                    result: LintResult, plans: dict) -> None:
    from mercurio_migrate.layout import discover

    migrations = discover(directory).migrations
    folders = [Path(m.folder) for m in migrations]
    # the folders before the last one selected are read too: their migrations build the schema it sees
    last = max((i for i, f in enumerate(folders) if selection is None or f.name in selection), default=-1)
    schema = Schema()
    for migration, path in zip(migrations[: last + 1], folders):
        forward = parse_file(migration.migration.path, migration.migration.text, "migration")
        wanted = None if selection is None else selection.get(path.name)
        if selection is not None and wanted is None:
            schema.apply(forward)
            continue
        backward = (parse_file(migration.rollback.path, migration.rollback.text, "rollback")
                    if migration.rollback else None)
        folder = Folder(migration.version, migration.name, path, forward, backward)
        only = [None] if wanted is None or None in wanted else sorted(wanted)
        for target in only:
            _run_file(FileContext(forward, folder, schema, config), rules, target, result, plans)
        schema.apply(forward)
        if backward is not None:
            for target in only:
                _run_file(FileContext(backward, folder, schema, config), rules, target, result, plans)
