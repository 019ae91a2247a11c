"""The planning rule filter (PLANNING_RULES)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from connector.model import Appointment, Importance
from connector.sync.rules import RuleError, parse_rules

BASE = Appointment(
    guid="g", subject="Boiler", body="", start=datetime(2026, 1, 5, 9, tzinfo=UTC), end=datetime(2026, 1, 5, 10, tzinfo=UTC),
    all_day=False, importance=Importance.NORMAL, category="Maintenance", time_marker=None, job_no="SVC-001",
    task_no="T1", source_app="CRM", source_type="SVC", assignments=(), last_modified=None, created_by_exchange=False,
)


def allowed(rules: str, **changes: object) -> bool:
    return parse_rules(rules).allows(replace(BASE, **changes))  # type: ignore[arg-type]


def test_no_rules_allow_everything() -> None:
    assert allowed("") and allowed("  ;  ")


def test_exclude_by_category_ignores_case() -> None:
    assert not allowed("exclude category = maintenance")
    assert allowed("exclude category = Internal")


def test_include_rules_require_one_match() -> None:
    assert allowed('include jobNo ~ "SVC-*"; include category = Sales')
    assert not allowed("include jobNo ~ INT-*")


def test_exclude_wins_over_include() -> None:
    assert not allowed("include jobNo ~ SVC-*; exclude taskNo = T1")


def test_lists_and_missing_fields() -> None:
    assert not allowed('exclude category in (Internal, "Maintenance", Sales)')
    assert allowed("exclude timeMarker = Tentative")  # no time marker: never equal
    assert allowed("include timeMarker != Tentative")
    assert not allowed("include timeMarker in (Tentative, Draft)")
    assert allowed("include timeMarker not in (Tentative, Draft)")
    assert not allowed("exclude timeMarker in (Tentative)", time_marker="tentative")


def test_semicolons_inside_quotes_are_values() -> None:
    assert not allowed('exclude subject = "a;b"', subject="A;B")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("exclude colour = red", "unknown field 'colour'"),
        ("skip category = red", "expected 'include|exclude"),
        ("exclude category in Internal", "a list must be written"),
        ("exclude category in ()", "the list is empty"),
        ('exclude subject = "open', "unbalanced quotes"),
        ("exclude category > 3", "expected 'include|exclude"),
    ],
)
def test_bad_rules_name_the_rule_and_problem(text: str, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        parse_rules("include category = Maintenance; " + text)
    with pytest.raises(RuleError, match="rule 2"):
        parse_rules("include category = Maintenance; " + text)
