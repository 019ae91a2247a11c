"""Configuration knobs of the Graph emulator.

Defaults follow the real service; where the real behaviour is unknown the default is the harsher
choice (reject rather than clamp, require rather than tolerate), so that code which passes against
the emulator also copes with Microsoft Graph.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class GraphEmulatorConfig:
    """Every behaviour knob of the emulator; all have defaults (``GraphEmulatorConfig()``)."""

    # Auth: the only accepted bearer token; None accepts any non-empty bearer token.
    token: str | None = "dev-graph-token"
    tenant_id: str = "00000000-0000-4000-8000-00000000aaaa"
    application_id: str = "00000000-0000-4000-8000-00000000bbbb"
    creator_id: str = "00000000-0000-4000-8000-00000000cccc"
    # Which user `me/events` means in a subscription resource. App-only tokens have no "me" on
    # real Graph, so the default rejects it.
    me_user: str | None = None

    # Throttling per app per mailbox.
    concurrency: int = 4
    budget: int = 10_000
    window_seconds: float = 600
    concurrency_retry_after_seconds: int = 1
    # Subscription API: create/patch/delete per app.
    subscription_rate_limit: int = 500
    subscription_rate_window_seconds: float = 20
    max_subscriptions_per_mailbox: int = 1000

    # Subscriptions.
    validation_timeout_seconds: float = 10
    validation_require_text_plain: bool = True
    min_subscription_minutes: float = 45
    max_subscription_minutes: float = 10_080
    clamp_expiration: bool = False
    max_client_state_length: int = 128
    require_https: bool = False

    # Notification delivery.
    extra_updated_on_create: bool = True
    delivery_batch_ms: int = 50
    delivery_timeout_seconds: float = 10
    retry_base_seconds: float = 0.2
    retry_factor: float = 2
    retry_max_seconds: float = 5
    retry_max_duration_seconds: float = 60
    notification_log_limit: int = 10_000

    # Delta and paging.
    delta_token_ttl_seconds: float | None = None
    delta_default_page_size: int = 10
    delta_max_page_size: int = 1000
    default_page_size: int = 10
    users_default_page_size: int = 100
    max_page_size: int = 1000

    # Request validation: reject unknown and read-only properties in event bodies.
    strict_fields: bool = True
    # $batch: at most this many requests, this many in flight per mailbox.
    batch_max_requests: int = 20
    batch_mailbox_concurrency: int = 4
    # Recurring series: stop expanding after this many occurrences (guards noEnd series).
    max_expanded_occurrences: int = 5000

    # Real-world semantics of calendar reads (see ../shared/reference/graph.md and README).
    # calendarView/delta renders occurrences as stubs (id, type, seriesMasterId, start, end only:
    # microsoft-graph-docs #7632, #22197, #1716) and lists the series master; "full" renders every
    # occurrence with all its fields (the lenient variant).
    delta_occurrences: str = "stub"
    # Deleting one occurrence: "none" gives no @removed for it in delta (docs PR #4501; only the
    # series master changes), "removed" gives an @removed tombstone.
    occurrence_delete_signal: str = "none"
    # Bodies are HTML unless `Prefer: outlook.body-content-type="text"` is sent; False makes the
    # emulator ignore that Prefer (always HTML, no Preference-Applied for it).
    honour_body_content_type: bool = True
