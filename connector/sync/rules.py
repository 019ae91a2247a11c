"""The planning rule filter: which appointments go to Outlook at all (like the original's rule engine).

Syntax (app setting `PLANNING_RULES`), rules separated by `;`:

    include|exclude <field> <op> <value>

- fields: `category`, `timeMarker`, `jobNo`, `taskNo`, `sourceApp`, `sourceType`, `subject`
- ops: `=`, `!=`, `~` (wildcard match, `*` and `?`), `in (a, b, ...)`, `not in (a, b, ...)`
- values: bare words or "double-quoted strings"; comparisons ignore case.

An appointment goes to Outlook when no `include` rule exists or at least one matches, and no
`exclude` rule matches. A field the appointment lacks never equals a value (so `!=` and `not in`
match it). Example: `exclude category = Internal; include jobNo ~ "SVC-*"`.
Parsing is strict: an unknown field or operator, or a malformed list, is a `RuleError` naming the
rule, so a typo stops the app at start-up instead of silently letting everything through.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Literal

from connector.model import Appointment

FIELDS: dict[str, str] = {
    "category": "category",
    "timemarker": "time_marker",
    "jobno": "job_no",
    "taskno": "task_no",
    "sourceapp": "source_app",
    "sourcetype": "source_type",
    "subject": "subject",
}
_RULE = re.compile(
    r'^(?P<kind>include|exclude)\s+(?P<field>[A-Za-z]+)\s*(?P<op>not\s+in\b|in\b|!=|=|~)\s*(?P<value>.+)$',
    re.IGNORECASE,
)
_LIST_ITEM = re.compile(r'\s*("(?:[^"]*)"|[^,"]+?)\s*(?:,|$)')


class RuleError(ValueError):
    """A rule that cannot be parsed; the message names the rule and the problem."""


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    if '"' in text:
        raise ValueError(f"unbalanced quotes in {text!r}")
    return text


@dataclass(frozen=True)
class Rule:
    kind: Literal["include", "exclude"]
    field: str  # attribute of Appointment
    op: str
    values: tuple[str, ...]
    text: str

    def matches(self, appointment: Appointment) -> bool:
        actual = getattr(appointment, self.field)
        actual = None if actual in (None, "") else str(actual).lower()
        wanted = [v.lower() for v in self.values]
        if self.op == "=":
            return actual == wanted[0]
        if self.op == "!=":
            return actual != wanted[0]
        if self.op == "~":
            return actual is not None and fnmatch.fnmatchcase(actual, wanted[0])
        if self.op == "in":
            return actual in wanted
        return actual not in wanted  # not in


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...] = ()

    def allows(self, appointment: Appointment) -> bool:
        includes = [r for r in self.rules if r.kind == "include"]
        if includes and not any(r.matches(appointment) for r in includes):
            return False
        return not any(r.matches(appointment) for r in self.rules if r.kind == "exclude")

    def describe(self) -> str:
        return "; ".join(r.text for r in self.rules) or "(no rules: every appointment)"


def parse_rules(text: str) -> RuleSet:
    """Parse the `PLANNING_RULES` syntax above; raise `RuleError` on the first bad rule."""
    rules: list[Rule] = []
    for number, raw in enumerate(_split(text), start=1):
        match = _RULE.match(raw)
        if not match:
            raise RuleError(f"rule {number} {raw!r}: expected 'include|exclude <field> <op> <value>'")
        field_name = match["field"].lower()
        if field_name not in FIELDS:
            raise RuleError(f"rule {number} {raw!r}: unknown field {match['field']!r} "
                            f"(known: category, timeMarker, jobNo, taskNo, sourceApp, sourceType, subject)")
        op = " ".join(match["op"].lower().split())
        value = match["value"].strip()
        try:
            if op in ("in", "not in"):
                if not (value.startswith("(") and value.endswith(")")):
                    raise ValueError("a list must be written (a, b, ...)")
                inner = value[1:-1]
                values = tuple(_unquote(item) for item in _LIST_ITEM.findall(inner) if item.strip())
                if not values:
                    raise ValueError("the list is empty")
            else:
                values = (_unquote(value),)
        except ValueError as exc:
            raise RuleError(f"rule {number} {raw!r}: {exc}") from None
        kind: Literal["include", "exclude"] = "include" if match["kind"].lower() == "include" else "exclude"
        rules.append(Rule(kind, FIELDS[field_name], op, values, raw))
    return RuleSet(tuple(rules))


def _split(text: str) -> list[str]:
    """Split on `;` outside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == ";" and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]
