"""Findings rendered as text (one line each plus the fix), JSON, or SARIF 2.1.0 for GitHub code scanning."""

from __future__ import annotations

import json
from pathlib import Path

from mercurio_migrate.lint import LintResult

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def text(result: LintResult) -> str:
    lines = []
    for f in result.findings:
        lines.append(f"{f.file}:{f.line}:{f.column}: {f.severity} [{f.rule}] {f.message}")
        lines.append(f"    fix: {f.fix}")
    counts = result.counts()
    summary = (f"{result.files} file(s): {counts['error']} error(s), {counts['warning']} warning(s), "
               f"{counts['info']} info")
    if result.suppressed:
        summary += f", {result.suppressed} suppressed"
    lines.append(summary)
    return "\n".join(lines) + "\n"


def as_json(result: LintResult) -> str:
    document = {"findings": [f.as_dict() for f in result.findings], "files": result.files,
                "suppressed": result.suppressed, "counts": result.counts()}
    return json.dumps(document, indent=2) + "\n"


def _uri(path: str) -> str:
    """A repository-relative URI when the file is under the working directory (what code scanning needs)."""
    candidate = Path(path)
    try:
        return candidate.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return candidate.as_posix()


def sarif(result: LintResult) -> str:
    from mercurio_migrate import __version__
    from mercurio_migrate.lint.rules import registry

    rules = registry()
    used = sorted({f.rule for f in result.findings})
    index = {rule_id: i for i, rule_id in enumerate(used)}
    descriptors = []
    for rule_id in used:
        rule = rules[rule_id]
        descriptors.append({
            "id": rule_id,
            "name": "".join(part.capitalize() for part in rule_id.split("-")),
            "shortDescription": {"text": rule.summary},
            "fullDescription": {"text": " ".join(rule.doc.split())},
            "help": {"text": rule.doc.strip(), "markdown": rule.doc.strip()},
            "defaultConfiguration": {"level": _SARIF_LEVEL.get(rule.severity, "warning")},
            "properties": {"tags": [rule.category]},
        })
    results = []
    for f in result.findings:
        results.append({
            "ruleId": f.rule,
            "ruleIndex": index[f.rule],
            "level": _SARIF_LEVEL[f.severity],
            "message": {"text": f"{f.message}. Fix: {f.fix}"},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": _uri(f.file)},
                "region": {"startLine": f.line, "startColumn": f.column},
            }}],
            "partialFingerprints": {"mercurioLint/v1": f"{f.rule}:{_uri(f.file)}:{f.message}"},
        })
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "mercurio-migrate lint", "version": __version__,
                                "informationUri": "https://github.com/mercurio/mercurio-migrate",
                                "rules": descriptors}},
            "results": results,
        }],
    }
    return json.dumps(document, indent=2) + "\n"


def render(result: LintResult, fmt: str) -> str:
    return {"text": text, "json": as_json, "sarif": sarif}[fmt](result)
