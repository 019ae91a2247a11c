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
    # Real 429s carry Retry-After in seconds, sometimes fractional ("0.5"): the default sends a
    # fraction so that a client parsing it as an integer breaks here rather than in production.
    concurrency_retry_after_seconds: float = 0.5
    fractional_retry_after: bool = True  # the budget's Retry-After as the exact (fractional) wait
    # Error code of a throttled request: "ApplicationThrottled" (Outlook, with "Application is over its
    # MailboxConcurrency limit." / "... MailboxRequests limit.") or "TooManyRequests".
    throttle_error_code: str = "ApplicationThrottled"
    # Subscription API: create/patch/delete per app.
    subscription_rate_limit: int = 500
    subscription_rate_window_seconds: float = 20
    max_subscriptions_per_mailbox: int = 1000
    # A second subscription of the app with the same changeType and resource is refused with 409
    # ("Subscription Id <id> already exists for the requested combination"), whatever its
    # notificationUrl (docs since 2023). False allows duplicates (SharePoint reportedly does).
    unique_subscriptions: bool = True
    # Whether GET /subscriptions shows the clientState. Not documented either way: hidden (null) is the
    # harsher choice, since a client can then not recognise a leftover subscription as its own.
    expose_client_state: bool = False
    subscriptions_page_size: int = 100  # GET /subscriptions pages with @odata.nextLink

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
    # Graph's HTTP client gives a notification POST 3 s: a later answer counts as failed (and slow).
    delivery_timeout_seconds: float = 3
    # Retries: exponential back-off (Graph: up to 4 h; scaled down here, a shorter give-up is harsher).
    retry_base_seconds: float = 0.2
    retry_factor: float = 2
    retry_max_seconds: float = 5
    retry_max_duration_seconds: float = 60
    # Endpoint health (change-notifications-delivery-webhooks): over `slow_share` of the answers of the
    # last `endpoint_window_seconds` slower than `slow_answer_seconds` make the endpoint "slow" (new
    # notifications held `slow_delay_seconds`); over `drop_share` failed (error, timeout, or slower than
    # `drop_answer_seconds`) make it "drop": every notification is dropped for `drop_seconds`, never
    # recovered. Graph's minimum volume before judging is not documented: `endpoint_min_answers`.
    endpoint_window_seconds: float = 600
    slow_answer_seconds: float = 3
    drop_answer_seconds: float = 10
    slow_share: float = 0.10
    drop_share: float = 0.15
    slow_delay_seconds: float = 600
    drop_seconds: float = 600
    endpoint_min_answers: int = 10
    # reauthorizationRequired arrives on its own ("from once every few minutes for every
    # subscription", lifecycle docs): sent to each subscription's lifecycle URL every this many
    # seconds; None turns it off (focused tests only).
    reauthorization_interval_seconds: float | None = 120
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
    # $batch: at most this many requests; Graph runs at most `batch_concurrency` of them at a time,
    # whatever the mailboxes they address (throttling-limits).
    batch_max_requests: int = 20
    # A $batch body larger than this is refused as a whole with 413 (Graph takes at most 4 MB per
    # request: reported for sendMail and batches alike).
    batch_max_body_bytes: int = 4 * 1024 * 1024
    batch_concurrency: int = 4
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
    # A create repeating a transactionId (Graph does not document the answer): "existing" answers the
    # first event (201) and a deleted event's transactionId is free again; "conflict" answers 409
    # ErrorDuplicateTransactionId and keeps the transactionIds of deleted events taken.
    repeated_transaction: str = "existing"
