"""The rule registry: every module in this package is one rule, registered by its ``ID``.

A rule module defines ``ID`` (stable kebab-case id), ``SEVERITY`` (error, warning, info or off: off rules
run only when selected), ``CATEGORY`` (guideline, lock-safety or style), ``SQUAWK`` (the squawk rules it
covers, for the comparison and the docs) and ``check(ctx)`` yielding findings. Optionally ``KINDS``, the
statement kinds (libpg_query node names) without which the rule cannot report anything, and ``ROLES``, the
file roles it applies to (migration, rollback, sql): the runner calls ``check`` only for files that have
one of those kinds and one of those roles, so most rules skip most files without looking at them. Its docstring is its
documentation: the first line a summary, then why, then a paragraph starting ``Fix:``.

A house rule of a product's own format (Mercurio's header, tenant columns, …) says so in ``PROFILE``, the
profile it belongs to (``"mercurio"``): it runs only in projects that use that profile (config.Settings.profile).
A rule without ``PROFILE`` is generic (lock safety, rollbacks, correctness) and runs everywhere.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    category: str
    squawk: tuple[str, ...]
    doc: str
    check: Callable[..., Iterable]
    kinds: frozenset[str] | None = None  # None: every file
    roles: frozenset[str] | None = None
    profile: str | None = None  # the profile a house rule belongs to; None: a generic rule

    def applies(self, kinds, role: str) -> bool:
        """Whether the rule can report anything on a file holding these statement kinds, in this role."""
        return ((self.roles is None or role in self.roles)
                and (self.kinds is None or not self.kinds.isdisjoint(kinds)))

    @property
    def summary(self) -> str:
        return self.doc.strip().splitlines()[0].strip()


@cache
def registry() -> dict[str, Rule]:
    rules: dict[str, Rule] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        rule = Rule(module.ID, module.SEVERITY, module.CATEGORY, tuple(getattr(module, "SQUAWK", ())),
                    module.__doc__ or "", module.check, _frozen(getattr(module, "KINDS", None)),
                    _frozen(getattr(module, "ROLES", None)), getattr(module, "PROFILE", None))
        if rule.id in rules or rule.id.replace("-", "_") != info.name:
            raise RuntimeError(f"rule module {info.name} declares id {rule.id!r}: ids are unique and match "
                               "the module name")
        rules[rule.id] = rule
    return rules


def for_profile(profile: str | None) -> dict[str, Rule]:
    """The rules of a project with this profile (None: the generic rules only)."""
    return {rule_id: rule for rule_id, rule in registry().items() if rule.profile in (None, profile)}


def _frozen(values) -> frozenset[str] | None:
    return None if values is None else frozenset(values)
