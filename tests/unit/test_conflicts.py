"""What a 412 meant, and how a conflict is told: the pure rules of `connector.sync.conflicts`."""

from __future__ import annotations

from connector.sync.conflicts import (
    AfterPreconditionFailed,
    ConflictPolicy,
    after_precondition_failed,
    changed_fields,
    conflict_detail,
    if_match,
)

WRITTEN = {"subject": "s1", "start": "t1", "body": "b1"}


def test_a_412_whose_changekey_did_not_move_is_graphs_own_busy_answer() -> None:
    assert after_precondition_failed("ck1", WRITTEN, "ck1", {**WRITTEN, "subject": "other"}) \
        is AfterPreconditionFailed.BUSY


def test_a_moved_changekey_with_the_same_content_is_no_edit() -> None:
    assert after_precondition_failed("ck1", WRITTEN, "ck2", dict(WRITTEN)) is AfterPreconditionFailed.MOVED


def test_a_moved_changekey_with_other_content_is_a_persons_edit() -> None:
    assert after_precondition_failed("ck1", WRITTEN, "ck2", {**WRITTEN, "start": "t2"}) is AfterPreconditionFailed.EDITED
    # Nothing known of what was written (a restore) or an unreadable event: an edit, never "moved".
    assert after_precondition_failed("ck1", {}, "ck2", {}) is AfterPreconditionFailed.EDITED


def test_if_match_is_the_etag_form_of_the_changekey_and_absent_without_one() -> None:
    assert if_match("DwAAABYAAAA") == 'W/"DwAAABYAAAA"'
    assert if_match(None) is None and if_match("") is None


def test_the_conflicts_account_names_both_sides_versions_and_the_winner() -> None:
    assert changed_fields(WRITTEN, {**WRITTEN, "start": "t2", "body": "b2"}) == ["body", "start"]
    text = conflict_detail(ConflictPolicy.OUTLOOK, ["subject"], ["start"], "2026-03-02T08:00:06Z", ("ck1", "ck2"))
    assert "planning board: subject (appointment modified 2026-03-02T08:00:06Z)" in text
    assert "Outlook: start (changeKey ck1 → ck2)" in text
    assert text.endswith("CONFLICT_POLICY=outlook: the Outlook edit was taken onto the planning board")
