"""Configuration of the Dime.Scheduler emulator: one dataclass, a default for every knob.

Where Dime.Scheduler's real behaviour is not documented, the default is the harsher choice for the
connector under test (it must cope with the worst plausible server), and a knob relaxes it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Literal

PayloadCasing = Literal["pascal", "camel"]
EnvelopeCasing = Literal["pascal", "camel"]
WebhookRouting = Literal["source_app", "all"]
AppointmentLookup = Literal["id", "id_or_guid"]
MissingAppointment = Literal["404", "empty_200"]
HookCreatedAnswer = Literal["location", "body"]
PayloadDates = Literal["naive", "utc_z", "offset"]
BlankParameter = Literal["keeps", "clears"]
UpdateWithoutId = Literal["inserts", "by_guid"]

# Knobs whose value is one of a few words: name -> the allowed words.
CHOICES: dict[str, tuple[str, ...]] = {
    "payload_casing": ("pascal", "camel"),
    "import_envelope_casing": ("pascal", "camel"),
    "webhook_routing": ("source_app", "all"),
    "appointment_lookup": ("id", "id_or_guid"),
    "appointment_missing_answer": ("404", "empty_200"),
    "webhook_created_answer": ("location", "body"),
    "payload_dates": ("naive", "utc_z", "offset"),
    "blank_parameter": ("keeps", "clears"),
    "update_without_id": ("inserts", "by_guid"),
}

# Knobs that the control plane may change at run time (PATCH /_emulator/config); the rest shape the
# server itself (keys, ports) and are fixed when the app is created.
RUNTIME_KNOBS = frozenset(
    {
        "import_fires_webhooks",
        "sent_from_back_office_suppresses_webhooks",
        "payload_casing",
        "retry_base_seconds",
        "retry_factor",
        "retry_max_seconds",
        "retry_max_attempts",
        "delivery_timeout_seconds",
        "event_header",
        "accept_naive_dates",
        "reject_unknown_parameters",
        "strict_value_types",
        "allow_exchange_procedures_on_planner_items",
        "exchange_upsert_matches_exchange_id",
        "max_webhooks",
        "import_user",
        "planner_user",
        "import_envelope_casing",
        "import_content_as_object",
        "import_failure_as_http_200",
        "import_batch_partial",
        "webhook_routing",
        "payload_outlook_fields",
        "appointment_lookup",
        "appointment_missing_answer",
        "webhook_created_answer",
        "payload_dates",
        "payload_offset_minutes",
        "blank_parameter",
        "update_without_id",
    }
)


@dataclass
class SchedulerEmulatorConfig:
    """Every knob of the emulator. ``SchedulerEmulatorConfig()`` is the documented default."""

    # --- access --------------------------------------------------------------------------------
    api_keys: tuple[str, ...] = ("dev-api-key",)
    """Accepted values of the ``X-API-KEY`` header; anything else (or none) is answered 401."""

    # --- imports -------------------------------------------------------------------------------
    import_fires_webhooks: bool = True
    """Appointment changes made through ``POST /import`` fire webhooks, so the connector must
    suppress the echoes of its own writes (harsher than staying silent)."""
    sent_from_back_office_suppresses_webhooks: bool = False
    """If true, an import call with ``SentFromBackOffice=True`` fires no webhook (undocumented in
    Dime.Scheduler; off by default, the harsher choice)."""
    accept_naive_dates: bool = False
    """Dates without ``Z``/offset are rejected (400) unless this is true (then read as UTC)."""
    reject_unknown_parameters: bool = True
    """A parameter name the procedure does not declare is a 400, as SQL Server answers an unknown
    stored-procedure parameter. (``mboc_upsertJob``/``mboc_upsertTask`` are minimal and lenient.)"""
    strict_value_types: bool = True
    """``ParameterValues`` must be strings (or null), as every SDK sends them; numbers or booleans
    in JSON are a 400 unless this is false."""
    allow_exchange_procedures_on_planner_items: bool = False
    """``mboc_upsertExchangeAppointment``/``mboc_deleteExchangeAppointment`` aimed at an appointment
    that was planned on the board are a 400 unless this is true."""
    exchange_upsert_matches_exchange_id: bool = False
    """Without AppointmentGuid/AppointmentId, ``mboc_upsertExchangeAppointment`` creates a new item
    even if one with the same ExchangeId exists, unless this is true (then it updates that item)."""
    blank_parameter: BlankParameter = "keeps"
    """A blank value ("") for a free-text or list parameter of ``mboc_upsertExchangeAppointment``
    (``Subject``, ``Body``, ``Categories``): ``keeps``: taken as "not given", the item keeps what it had
    (a partial upsert, as a procedure written ``ISNULL(NULLIF(@p, ''), col)`` does: the connector cannot
    clear a field with a blank); ``clears``: the field becomes empty. Dime.Scheduler documents neither."""
    update_without_id: UpdateWithoutId = "inserts"
    """``mboc_upsertAppointment`` without an ``AppointmentId`` (or with 0): ``inserts`` a new appointment
    (with the given GUID, or a new one when that GUID is taken), as the docs say: "the appointment id is
    required if you want to update an existing appointment; otherwise it inserts"; ``by_guid``: an
    existing appointment with that GUID is updated (the kinder reading)."""
    import_user: str = "api"
    """``LastModifiedUser``/``CreatedUser`` written by imports."""
    planner_user: str = "planner"
    """``LastModifiedUser``/``CreatedUser`` written by the planner control plane (unless the body
    names one)."""
    import_envelope_casing: EnvelopeCasing = "pascal"
    """``pascal``: ``{Content, ContentType, StatusCode}`` as the .NET SDK reads it; ``camel``:
    ``{content, contentType, statusCode}`` as the JS SDK reads it."""
    import_content_as_object: bool = False
    """``Content`` is a JSON *string* (.NET SDK) unless this is true (then a JSON object)."""
    import_failure_as_http_200: bool = True
    """A failed import answers HTTP 200 with the failure in the envelope (inner ``StatusCode`` 4xx/5xx,
    ``Content`` ``{Error, Description}``): the .NET SDK checks both statuses because this happens.
    False: the HTTP status is the inner one."""
    import_batch_partial: bool = True
    """A batch whose call #k fails keeps the calls before #k applied (and announced), and the answer is
    still the failure: the harsher case (a failure does not mean nothing happened). False: the batch is
    rolled back whole (all or nothing). Dime.Scheduler documents neither: a connector must cope with both."""

    # --- webhooks ------------------------------------------------------------------------------
    payload_casing: PayloadCasing = "pascal"
    """``pascal``: the full ``appointment-incoming`` object; ``camel``: the flat camelCase shape of
    that schema's example (appointmentGuid, sourceApp, ..., start, end)."""
    retry_base_seconds: float = 0.2
    retry_factor: float = 2.0
    retry_max_seconds: float = 5.0
    retry_max_attempts: int = 8
    """Attempts per delivery (first try included); only HTTP 200 is a success."""
    delivery_timeout_seconds: float = 10.0
    event_header: str | None = None
    """If set (e.g. ``X-Emulator-Event``), deliveries carry the event type in that header. Off by
    default: Dime.Scheduler documents no such header, so the receiver must tell events apart by the
    notification URL it subscribed with."""
    webhook_routing: WebhookRouting = "source_app"
    """``source_app``: a hook receives only appointments whose Source App (the job's) is the hook's
    ``sourceApp``, as Dime.Scheduler routes messages to connectors (docs: integrations/webhook);
    appointments without one (Outlook items) reach no hook. ``all``: every hook gets everything."""
    payload_outlook_fields: bool = False
    """The published ``appointment-incoming`` schema has no ``IsAllDayEvent``, ``CreatedByExchange``
    (nor ExchangeId, ICalUId, ShowAs, Sensitivity, Categories): they are left out of payloads and
    reads unless this is true."""
    appointment_lookup: AppointmentLookup = "id"
    """``GET /appointment/{id}``: ``id`` accepts the numeric id only (a GUID is 404, as an int64 route
    answers); ``id_or_guid`` accepts both."""
    appointment_missing_answer: MissingAppointment = "404"
    """``GET /appointment/{id}`` for an id no appointment has: ``404``, or ``empty_200`` (HTTP 200 with
    an empty body, as some APIs answer a look-up that found nothing; undocumented either way)."""
    webhook_created_answer: HookCreatedAnswer = "location"
    """The 201 of a webhook subscription: ``location``: an empty body and the hook in the
    ``Location`` header (what Power Platform unsubscribes through); ``body``: the hook as JSON too."""
    payload_dates: PayloadDates = "naive"
    """Dates in payloads and reads: ``naive`` ``2026-01-05T09:00:00`` (UTC without an offset, as the
    import examples write them); ``utc_z`` ``...Z``; ``offset`` in ``payload_offset_minutes``
    (``2026-01-05T10:00:00+01:00``)."""
    payload_offset_minutes: int = 60
    max_webhooks: int = 100
    """More subscriptions than this are answered 429, as the Swagger documents."""
    delivery_log_limit: int = 2000

    def with_overrides(self, changes: dict[str, Any]) -> SchedulerEmulatorConfig:
        """A copy with run-time knobs changed; raises ``ValueError`` naming a bad knob or value."""
        known = {f.name: f for f in fields(self)}
        clean: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in RUNTIME_KNOBS:
                raise ValueError(f"unknown or fixed knob {name!r}; changeable: {sorted(RUNTIME_KNOBS)}")
            current = getattr(self, name)
            if name in CHOICES:
                if value not in CHOICES[name]:
                    raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in CHOICES[name])}")
            elif name == "event_header":
                if value is not None and not (isinstance(value, str) and value):
                    raise ValueError("event_header must be a non-empty string or null")
            elif isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"{name} must be a boolean")
            elif isinstance(current, int | float):
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ValueError(f"{name} must be a non-negative number")
                if isinstance(current, int) and not isinstance(value, int):
                    raise ValueError(f"{name} must be an integer")
            elif isinstance(current, str) and not isinstance(value, str):
                raise ValueError(f"{name} must be a string")
            assert name in known
            clean[name] = value
        return replace(self, **clean)

    def as_json(self) -> dict[str, Any]:
        """JSON view for the control plane (without the API keys)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "api_keys":
                continue
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out
