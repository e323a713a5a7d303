"""A `-- mercurio-lint:` comment that does not suppress anything (unknown rule, no reason, no statement).

A suppression is a reviewed decision: it names the rule and says why the finding does not apply
(`-- mercurio-lint: ignore drop-column column unused since release 41`). One with a typo in the rule id,
without a reason or not followed by a statement silently does nothing, and the finding it was meant for
shows up again, or worse, the reviewer believes it is handled.

Fix: write `-- mercurio-lint: ignore RULE_ID reason` directly above the statement (or
`ignore-file RULE_ID reason` for the whole file), with a rule id from `mercurio-migrate lint --list-rules`.
"""

from __future__ import annotations

ID = "invalid-suppression"
SEVERITY = "warning"
CATEGORY = "guideline"
SQUAWK = ()


def check(ctx):
    for suppression in getattr(ctx, "suppressions", ()):
        if not suppression.valid:
            yield ctx.finding(None, suppression.problem, "Write `-- mercurio-lint: ignore RULE_ID reason`.",
                              line=suppression.line)
