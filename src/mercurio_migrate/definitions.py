"""Comparing two definitions of the same function or view as PostgreSQL prints them, the way a reader would:
a difference of layout is no difference, a difference PostgreSQL makes by itself is a note, any other
difference is shown as a unified diff.

- Function bodies are compared token by token (PostgreSQL's own scanner: whitespace and line breaks outside
  literals do not count; a rollback that re-creates a function laid out differently restores it).
- A view holding ``'now'::timestamp`` or ``current_date`` folded to a constant when it was created differs on
  every re-creation: when the timestamps are all that differ, it is a note.
- A view written ``SELECT *`` lists its columns in its table's order when it is created: when the select
  list holds the same columns in another order, it is a note (as a table's column order is).
"""

from __future__ import annotations

import difflib
import re

SAME = "same"
_DOLLAR_BODY = re.compile(r"\bAS (\$[A-Za-z_0-9]*\$)(.*)\1", re.S)
_FOLDED = re.compile(r"'\d{4}-\d{2}-\d{2}(?: [0-9:.+-]+)?'::(?:timestamp(?: with(?:out)? time zone)?|date)")


def verdict(kind: str, before: str, after: str) -> str | None:
    """SAME when the two definitions differ only in layout; a note's reason when PostgreSQL made the
    difference by itself; None when they really differ."""
    if _tokens(before) == _tokens(after):
        return SAME
    if kind in ("view", "materialized view"):
        if _FOLDED.sub("'…'", before) == _FOLDED.sub("'…'", after):
            return "a constant PostgreSQL folded from 'now' or current_date when the view was created"
        if _same_columns_reordered(before, after):
            return "its columns follow its table's column order (SELECT * is expanded when the view is created)"
    return None


def unified(before: str, after: str) -> str:
    """A unified diff of the two texts, as the report shows it."""
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), "before", "after", lineterm="", n=1)
    return "\n".join(lines)


def _tokens(text: str) -> tuple:
    """The definition as tokens; a dollar-quoted function body scanned too (it is one literal otherwise)."""
    match = _DOLLAR_BODY.search(text)
    if match is None:
        return _scan(text)
    return _scan(text[:match.start(2)]) + ("<body>",) + _scan(match.group(2)) + _scan(text[match.end():])


def _scan(text: str) -> tuple:
    from pglast.parser import ParseError, scan

    try:
        return tuple(text[t.start:t.end + 1] for t in scan(text))
    except ParseError:  # not SQL the scanner takes (a body in another language): compare it with blanks folded
        return tuple(text.split())


def _same_columns_reordered(before: str, after: str) -> bool:
    import json

    from pglast.parser import ParseError, parse_sql_json

    def shape(text: str):
        try:
            stmts = json.loads(parse_sql_json(text)).get("stmts", [])
        except ParseError:
            return None
        if len(stmts) != 1 or "SelectStmt" not in stmts[0]["stmt"]:
            return None
        select = dict(stmts[0]["stmt"]["SelectStmt"])
        targets = sorted(json.dumps(_without_locations(t), sort_keys=True) for t in select.pop("targetList", []))
        return targets, json.dumps(_without_locations(select), sort_keys=True)

    first, second = shape(before), shape(after)
    return first is not None and first == second


def _without_locations(node):
    if isinstance(node, dict):
        return {k: _without_locations(v) for k, v in node.items() if k != "location"}
    if isinstance(node, list):
        return [_without_locations(v) for v in node]
    return node
