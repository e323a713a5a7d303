"""``mercurio-migrate lint``: static checks of migration folders and SQL files, no database needed.

Each file is parsed once (pglast); the schema earlier migrations leave behind is replayed from their
statements, so a rule can tell a table that existed before the migration (where locks hurt) from one the
same file created a few lines earlier. Rules live one per module in ``lint/rules``; their docstrings are
the documentation (``python -m mercurio_migrate.lint.docs``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path

from mercurio_migrate.errors import UsageError
from mercurio_migrate.lint.model import SEVERITIES, Finding, SqlFile, Stmt, parse_file
from mercurio_migrate.lint.schema import Schema

__all__ = ["Finding", "FileContext", "Folder", "LintConfig", "LintResult", "lint_paths", "load_config"]

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

    def finding(self, stmt: Stmt | None, message: str, fix: str, node=None, line: int | None = None) -> Finding:
        if stmt is None:
            position = (line or 1, 1)
        else:
            position = self.file.position(node, stmt)
        return Finding(self._rule[0], self._rule[1], self.file.path, position[0], position[1], message, fix,
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
    findings: list[Finding] = field(default_factory=list)
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
                finding = Finding(rule_id, severity, finding.file, finding.line, finding.column, finding.message,
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


def default_workers() -> int:
    """2 when this process may run on two processors or more (its CPU affinity, as taskset or a container
    sets it), else 1."""
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        available = os.cpu_count() or 1
    return 2 if available >= 2 else 1


def lint_paths(paths: list[Path], config: LintConfig, workers: int = 1) -> LintResult:
    """Lint migration directories, migration folders and SQL files; findings sorted by file and line.

    ``workers=2`` lets a large migrations directory be linted as two halves in two processes (see
    ``_lint_in_two``); the findings are the same."""
    import gc

    # The parse trees, files and findings hold no reference cycles, so reference counting frees them; the
    # cyclic collector would only re-scan the growing list of findings (a few per cent of the run).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _lint_paths(paths, config, workers)
    finally:
        if enabled:
            gc.enable()


def _lint_paths(paths: list[Path], config: LintConfig, workers: int = 1) -> LintResult:
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
        _lint_directory(directory, selection, rules, config, result, plans, workers)
    for path in loose:
        text = _read(path)
        role = {"migration.sql": "migration", "rollback.sql": "rollback"}.get(path.name, "sql")
        _run_file(FileContext(parse_file(path, text, role), None, Schema(), config), rules, None, result, plans)
    result.findings.sort(key=attrgetter("file", "line", "column", "rule"))
    return result


def _read(path: Path) -> str:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})",
                         hint="Re-save the file as UTF-8.") from None
    return text[1:] if text.startswith("\ufeff") else text


def _lint_directory(directory: Path, selection: dict[str, set] | None, rules: dict, config: LintConfig,
                    result: LintResult, plans: dict | None = None, workers: int = 1) -> None:
    migrations = _migrations(directory)
    last = max((i for i, m in enumerate(migrations) if selection is None or m.folder.name in selection), default=-1)
    if workers >= 2 and selection is None and len(migrations) >= PARALLEL_FROM:
        _lint_in_two(migrations, rules, config, result, plans)
        return
    _lint_range(migrations[: last + 1], selection, Schema(), rules, config, result, plans)


def _lint_range(migrations: list, selection: dict[str, set] | None, schema: Schema, rules: dict,
                config: LintConfig, result: LintResult, plans: dict | None) -> None:
    for migration in migrations:
        forward = parse_file(migration.migration.path, migration.migration.text, "migration")
        wanted = None if selection is None else selection.get(migration.folder.name)
        if selection is not None and wanted is None:
            schema.apply(forward)
            continue
        backward = (parse_file(migration.rollback.path, migration.rollback.text, "rollback")
                    if migration.rollback else None)
        folder = Folder(migration.version, migration.name, migration.folder, forward, backward)
        only = [None] if wanted is None or None in wanted else sorted(wanted)
        for target in only:
            _run_file(FileContext(forward, folder, schema, config), rules, target, result, plans)
        schema.apply(forward)
        if backward is not None:
            for target in only:
                _run_file(FileContext(backward, folder, schema, config), rules, target, result, plans)


PARALLEL_FROM = 200  # folders: below this, starting a second process costs more than it saves


def _lint_in_two(migrations: list, rules: dict, config: LintConfig, result: LintResult, plans: dict | None) -> None:
    """Lint the first half here and the second half in a forked process, which first replays the schema the
    first half leaves (parsing its migration.sql files only). Each file is linted by exactly the code the
    sequential run uses, and the halves' findings are joined in folder order, so the result is the same. If
    the second process fails, this one lints the second half itself."""
    import pickle
    import threading

    half = len(migrations) // 2
    pid = -1
    if hasattr(os, "fork") and threading.active_count() == 1:
        read_end, write_end = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_end)
            os.close(write_end)
            pid = -1
        if pid == 0:  # the second process
            status = 1
            try:
                os.close(read_end)
                schema = Schema()
                for migration in migrations[:half]:
                    schema.apply(parse_file(migration.migration.path, migration.migration.text, "migration"))
                second = LintResult()
                _lint_range(migrations[half:], None, schema, rules, config, second, {})
                data = pickle.dumps((second.findings, second.files, second.suppressed), pickle.HIGHEST_PROTOCOL)
                with os.fdopen(write_end, "wb") as out:
                    out.write(data)
                status = 0
            finally:
                os._exit(status)
        if pid > 0:
            os.close(write_end)
    schema = Schema()
    _lint_range(migrations[:half], None, schema, rules, config, result, plans)
    second = None
    if pid > 0:
        with os.fdopen(read_end, "rb") as incoming:
            data = incoming.read()
        _, status = os.waitpid(pid, 0)
        if status == 0 and data:
            second = pickle.loads(data)
    if second is None:  # no second process (or it failed): go on here, the schema is where the first half left it
        _lint_range(migrations[half:], None, schema, rules, config, result, plans)
        return
    findings, files, suppressed = second
    result.findings.extend(findings)
    result.files += files
    result.suppressed += suppressed


class _Migration:
    """The parts of a ``layout.Migration`` the linter reads."""

    __slots__ = ("version", "name", "folder", "migration", "rollback")

    def __init__(self, version: str, name: str, folder: Path, migration: _Source, rollback: _Source | None):
        self.version, self.name, self.folder, self.migration, self.rollback = version, name, folder, migration, rollback


class _Source:
    __slots__ = ("path", "text")

    def __init__(self, path: str, text: str):
        self.path, self.text = path, text


def _migrations(directory: Path) -> list:
    """The migrations of a directory in version order, as ``layout.discover`` reads them, without what only
    the other commands need (checksums, fixture/verify/plans files, warnings about stray files). Anything
    discover reports as a problem (bad folder name, duplicate version, missing, empty, binary or non-UTF-8
    file…) sends the whole directory to discover itself, which raises the same LayoutError as always."""
    from mercurio_migrate.layout import KNOWN_FILES, check_folder_name, discover

    try:
        entries = sorted((entry.name, entry.is_dir()) for entry in os.scandir(directory)
                         if not entry.name.startswith((".", "_")))
    except OSError:
        return list(discover(directory).migrations)
    out: list[_Migration] = []
    seen: set[str] = set()
    for name, is_dir in entries:
        if not is_dir:
            continue  # discover warns about a stray file; the linter does not show warnings
        checked = check_folder_name(name)
        if isinstance(checked, str) or checked[0] in seen:
            return list(discover(directory).migrations)
        seen.add(checked[0])
        folder = directory / name
        base = str(folder)
        texts: dict[str, str | None] = {}
        try:
            for entry in os.scandir(folder):
                if entry.name in KNOWN_FILES[:2]:
                    texts[entry.name] = _clean_text(entry.path) if entry.is_file() else None
                elif entry.name in KNOWN_FILES and (not entry.is_file() or _clean_text(entry.path) is None):
                    texts[entry.name] = None  # an unreadable fixture/verify/plans file is a layout problem
        except OSError:
            return list(discover(directory).migrations)
        migration, rollback = texts.get("migration.sql"), texts.get("rollback.sql", "")
        if (not migration or not migration.strip() or rollback is None or "rollback.sql" in texts and not rollback.strip()
                or None in texts.values()):
            return list(discover(directory).migrations)
        out.append(_Migration(checked[0], checked[1], folder, _Source(f"{base}/migration.sql", migration),
                              _Source(f"{base}/rollback.sql", rollback) if "rollback.sql" in texts else None))
    out.sort(key=lambda m: m.version)
    return out


def _clean_text(path: str) -> str | None:
    """The file's text as discover reads it (BOM dropped); None when discover would call it a problem."""
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if "\x00" in text:
        return None
    return text[1:] if text.startswith("\ufeff") else text
