"""Event-bus families. ``target`` is the configured target name (one per runtime).

The health-endpoint families are fixed: the default mapping's fields each have
their own family, and custom mapping entries land in the generic
``eventbus_field`` / ``eventbus_field_total`` families, labelled with the
entry's config name and its base unit, so the catalogue never depends on config.
"""

from __future__ import annotations

from ...catalogue.base import family

T = "target"

HTTP_STATUS = family(
    "eventbus_http_status_code", "gauge", "HTTP status code of the last health request.", T
)
RESPONSE_SIZE = family(
    "eventbus_response_size_bytes", "gauge", "Size of the last health response body.", T
)
QUEUE_DEPTH = family(
    "eventbus_queue_depth", "gauge", "Events waiting in the bus queue (default path queue_size).", T
)
QUEUE_CAPACITY = family(
    "eventbus_queue_capacity",
    "gauge",
    "Capacity of the bus queue (absent when the runtime reports it unbounded).",
    T,
)
SUBSCRIBERS = family(
    "eventbus_subscribers", "gauge", "Handlers subscribed to the bus (default subscriber_count).", T
)
PUBLISHED = family(
    "eventbus_published_events_total", "counter", "Events published on the bus, per runtime.", T
)
DROPPED = family(
    "eventbus_dropped_events_total",
    "counter",
    "Events the bus dropped (queue full or bus not running), as reported by the runtime.",
    T,
)
HANDLER_ERRORS = family(
    "eventbus_handler_errors_total", "counter", "Exceptions raised by event handlers.", T
)
DISPATCH_LAG = family(
    "eventbus_dispatch_lag_seconds",
    "gauge",
    "Age of the oldest event still waiting for dispatch, as reported by the runtime.",
    T,
)
LAST_EVENT = family(
    "eventbus_last_event_timestamp_seconds",
    "gauge",
    "Unix time the bus last dispatched an event (absent before the first event).",
    T,
)
LAST_HANDLER_ERROR = family(
    "eventbus_last_handler_error_timestamp_seconds",
    "gauge",
    "Unix time of the last handler error (absent if none since start).",
    T,
)
START_TIME = family(
    "eventbus_start_time_seconds",
    "gauge",
    "Unix time the bus started, from the runtime's reported uptime.",
    T,
)
RUNNING = family(
    "eventbus_running", "gauge", "1 if the runtime reports its bus (worker) running, else 0.", T
)
STATUS = family(
    "eventbus_status",
    "gauge",
    "1 for the runtime's current overall bus status, 0 for the other configured states; "
    "unrecognised values set status=unknown.",
    T,
    "status",
)
FIELD = family(
    "eventbus_field",
    "gauge",
    "A custom gauge from the health mapping; field is the mapping entry's config name.",
    T,
    "field",
    "unit",
)
FIELD_TOTAL = family(
    "eventbus_field_total",
    "counter",
    "A custom counter from the health mapping; field is the mapping entry's config name.",
    T,
    "field",
    "unit",
)
FIELD_PRESENT = family(
    "eventbus_field_present",
    "gauge",
    "1 if the mapped field was found with a value in the last response, 0 if missing or null.",
    T,
    "field",
)
CANARY_ROUNDTRIP = family(
    "eventbus_canary_roundtrip_seconds",
    "histogram",
    "Time from publishing a canary on the bus transport to reading it back.",
    T,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
CANARY_LAST_ROUNDTRIP = family(
    "eventbus_canary_last_roundtrip_seconds",
    "gauge",
    "Round trip of the most recent canary read back.",
    T,
)
CANARY_SENT = family(
    "eventbus_canary_sent_total",
    "counter",
    "Canaries handed to the bus transport (including attempts the transport refused).",
    T,
)
CANARY_RECEIVED = family(
    "eventbus_canary_received_total", "counter", "Canaries read back within their deadline.", T
)
CANARY_LOST = family(
    "eventbus_canary_lost_total",
    "counter",
    "Canaries not read back within their deadline (includes failed publishes).",
    T,
)
CANARY_OUT_OF_ORDER = family(
    "eventbus_canary_out_of_order_total",
    "counter",
    "Canaries read back after a canary that was published later.",
    T,
)
CANARY_LAST_SUCCESS = family(
    "eventbus_canary_last_success_timestamp_seconds",
    "gauge",
    "Unix time a canary was last read back within its deadline.",
    T,
)

FAMILIES = (
    HTTP_STATUS,
    RESPONSE_SIZE,
    STATUS,
    RUNNING,
    QUEUE_DEPTH,
    QUEUE_CAPACITY,
    SUBSCRIBERS,
    PUBLISHED,
    DROPPED,
    HANDLER_ERRORS,
    DISPATCH_LAG,
    LAST_EVENT,
    LAST_HANDLER_ERROR,
    START_TIME,
    FIELD,
    FIELD_TOTAL,
    FIELD_PRESENT,
    CANARY_ROUNDTRIP,
    CANARY_LAST_ROUNDTRIP,
    CANARY_SENT,
    CANARY_RECEIVED,
    CANARY_LOST,
    CANARY_OUT_OF_ORDER,
    CANARY_LAST_SUCCESS,
)
