"""What of an upstream error may be recorded (`connector.errors.error_summary`): the status and code,
the message's own words, one line, bounded; never a quoted value or an echoed request."""

from __future__ import annotations

import json

from connector.errors import MAX_ERROR_CHARS, GraphError, PlanningError, error_summary
from connector.stores.activity import ActivityEntry

SUBJECT = "Secret: custody hearing"


def test_quoted_values_go_apostrophes_and_the_words_stay() -> None:
    assert error_summary(str(GraphError(400, "ErrorInvalidRequest", f'The value "{SUBJECT}" is invalid'))) == \
        'Graph 400 ErrorInvalidRequest: The value "…" is invalid'
    assert error_summary(f"Subject '{SUBJECT}' can't exceed Graph's limit; O'Brien's 'is it' isn't") == \
        "Subject '…' can't exceed Graph's limit; O'Brien's '…' isn't"
    assert error_summary(f"title \u201c{SUBJECT}\u201d, note \u2018{SUBJECT}\u2019") == "title \u201c…\u201d, note \u2018…\u2019"
    assert SUBJECT not in error_summary(f"an open quote: '{SUBJECT} and the rest" + "x" * 5000)


def test_an_echoed_body_is_cut_and_the_rest_is_one_bounded_line() -> None:
    echo = str(PlanningError(400, "import: bad request " + json.dumps({"Subject": SUBJECT, "Body": "x" * 100_000})))
    assert error_summary(echo) == "Dime.Scheduler 400: import: bad request [payload removed]"
    assert error_summary("Graph 502 BadGateway: <html><title>secret</title>") == "Graph 502 BadGateway: [payload removed]"
    assert error_summary("value[0] is wrong\r\nX-Injected: yes\x00") == "value[0] is wrong X-Injected: yes"
    long = error_summary("word " * 10_000)
    assert len(long) == MAX_ERROR_CHARS and long.endswith("…")


def test_it_is_idempotent_and_every_recorded_error_gets_it() -> None:
    raw = f"Dime.Scheduler 409: '{SUBJECT}' " + "y" * 1000
    once = error_summary(raw)
    assert error_summary(once) == once and SUBJECT not in once
    assert ActivityEntry("to_planning", "import", "failed", error=raw).error == once
