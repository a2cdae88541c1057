// The runtime's event bus, seen through its health endpoint (status, worker,
// queue, drops, handler errors, dispatch) and through the exporter's canary on
// the bus transport (losses, round trip, order). The two parts fail
// independently: a failed part's series are withdrawn, the other's stay.
local a = import '../../bundle/lib/alerts.libsonnet';

{
  _config+:: {
    thresholds+: {
      // Status values (regexes over the `status` label) read as healthy and as
      // failing; anything else that is 1 (warn, unknown, a custom state) is degraded.
      eventbusStatusOk: 'ok|not_applicable',
      eventbusStatusFailing: 'fail',
      // A queue holding more than this many events and still growing (for
      // unbounded queues above all; bounded ones have the capacity ratio).
      eventbusQueueBacklogEvents: 1000,
      // Dropped events in 5 minutes above which the desk is paged (0: any drop).
      eventbusDroppedEventsPer5m: 0,
      eventbusHandlerErrorsPer5m: 10,
      // No dispatch for this long while events are being published: the worker is stuck.
      eventbusDispatchStallSeconds: 120,
      // Share of the canaries lost in 5 minutes at which the transport counts as
      // not delivering, and the fewest canaries a window needs before the loss
      // ratio or the round-trip quantile is judged.
      eventbusCanaryLossRatio: 0.5,
      eventbusCanaryMinCount: 5,
    },
  },

  rules+:: {
    local cfg = $._config,
    local t = cfg.thresholds,
    local alert(o) = a.alert(cfg, o { area: 'eventbus' }),
    local w(d) = a.window(cfg, d),
    // What the expressions' %(...)s name: the config, its thresholds, the gate
    // and the windows derived from thresholds.
    local params = cfg + t + {
      gate: a.targetInSession('eventbus'),
      idleWindow: w(a.duration(t.eventbusIdleSeconds)),
      stallWindow: w(a.duration(t.eventbusDispatchStallSeconds)),
    },
    local fmt(text, extra={}) = text % (params + extra),
    local by = 'job, instance, target',
    // 300 -> '5 minutes', 90 -> '90 seconds' (for descriptions).
    local spoken(seconds) =
      if seconds == 60 then '1 minute'
      else if seconds % 60 == 0 then '%d minutes' % (seconds / 60)
      else '%d seconds' % seconds,

    eventbus: {
      groups: [
        a.group('tradeops-eventbus', [
          a.record(
            'tradeops:eventbus_queue_fill:ratio',
            |||
              tradeops_eventbus_queue_depth{%(selector)s}
              / on (job, instance, target)
              (tradeops_eventbus_queue_capacity{%(selector)s} > 0)
            ||| % cfg
          ),
          alert({
            name: 'EventBusHealthEndpointDown',
            severity: 'critical',
            // The run failed and the health part's series are gone: it is the
            // endpoint, not (only) the canary, that failed.
            expr: fmt(|||
              tradeops_up{%(selector)s, kind="eventbus"} == 0
              unless on (job, instance, target)
              tradeops_eventbus_http_status_code{%(selector)s}
            |||),
            'for': '1m',
            summary: 'The runtime event-bus health endpoint cannot be read.',
            description: 'The health endpoint of runtime {{ $labels.target }} has given no readable answer for 1 minute (refused, timeout, auth, or a document that does not map: the exporter log says which). Its queue, drop and handler-error series are withdrawn.',
          }),
          alert({
            name: 'EventBusNotRunning',
            severity: 'critical',
            expr: fmt('tradeops_eventbus_running{%(selector)s} == 0'),
            'for': '1m',
            summary: 'The runtime reports its event-bus worker not running.',
            description: 'Runtime {{ $labels.target }} has reported its event-bus worker not running for 1 minute: published events are not dispatched and are dropped.',
          }),
          alert({
            name: 'EventBusStatusFailing',
            severity: 'critical',
            // 503 is how health endpoints say "unhealthy" whatever the states.
            expr: fmt(|||
              max by (%(by)s) (
                tradeops_eventbus_status{%(selector)s, status=~"%(eventbusStatusFailing)s"} == 1
                or
                tradeops_eventbus_http_status_code{%(selector)s} == 503
              )
            |||, { by: by }),
            'for': '2m',
            summary: 'The runtime reports its event bus failing.',
            description: 'Runtime {{ $labels.target }} has reported its event bus failing (status %s, or HTTP 503 from the health endpoint) for 2 minutes.' % t.eventbusStatusFailing,
          }),
          alert({
            name: 'EventBusStatusDegraded',
            severity: 'warning',
            expr: fmt(|||
              tradeops_eventbus_status{%(selector)s, status!~"%(eventbusStatusOk)s|%(eventbusStatusFailing)s"} == 1
            |||),
            'for': '10m',
            summary: 'The runtime reports its event bus degraded.',
            description: 'Runtime {{ $labels.target }} has reported event-bus status {{ $labels.status }} for 10 minutes (unknown: a value outside the configured states).',
          }),
          alert({
            name: 'EventBusNoSubscribers',
            severity: 'critical',
            expr: fmt(|||
              tradeops_eventbus_subscribers{%(selector)s} == 0
              and on (job, instance, target)
              increase(tradeops_eventbus_published_events_total{%(selector)s}[%(w)s]) > 0
            |||, { w: w('5m') }),
            'for': '2m',
            summary: 'Events are published on the event bus but no handler is subscribed.',
            description: 'Runtime {{ $labels.target }} has had no handler subscribed to its event bus for 2 minutes while events are published: nothing consumes them.',
          }),
          alert({
            name: 'EventBusQueueNearCapacity',
            severity: 'critical',
            expr: fmt('tradeops:eventbus_queue_fill:ratio > %(ratio)s', { ratio: a.num(t.eventbusQueueRatio) }),
            'for': '1m',
            summary: 'The event-bus queue is close to its capacity.',
            description: 'Runtime {{ $labels.target }}: the event-bus queue has been over %d%% full for 1 minute ({{ $value | humanizePercentage }}); at capacity new events are dropped.' % std.floor(t.eventbusQueueRatio * 100 + 0.5),
          }),
          alert({
            name: 'EventBusQueueGrowing',
            severity: 'warning',
            expr: fmt(|||
              deriv(tradeops_eventbus_queue_depth{%(selector)s}[%(w)s]) > 0
              and on (job, instance, target)
              tradeops_eventbus_queue_depth{%(selector)s} > %(backlog)s
            |||, { w: w('10m'), backlog: a.num(t.eventbusQueueBacklogEvents) }),
            'for': '5m',
            summary: 'The event-bus backlog is large and keeps growing.',
            description: 'Runtime {{ $labels.target }}: the event-bus queue holds over %s events and has grown by {{ $value | humanize }} events per second over 10 minutes, for 5 minutes.' % a.num(t.eventbusQueueBacklogEvents),
          }),
          alert({
            name: 'EventBusEventsDropped',
            severity: 'critical',
            // A runtime restart resets the counter; increase() counts only what
            // the new process dropped.
            expr: fmt(|||
              increase(tradeops_eventbus_dropped_events_total{%(selector)s}[%(w)s]) > %(max)s
            |||, { w: w('5m'), max: a.num(t.eventbusDroppedEventsPer5m) }),
            'for': '1m',
            summary: 'The event bus is dropping events.',
            description: 'Runtime {{ $labels.target }}: events dropped by the bus in 5 minutes (queue full or worker not running): {{ $value | printf "%.0f" }}. Those events are lost.',
          }),
          alert({
            name: 'EventBusHandlerErrors',
            severity: 'warning',
            expr: fmt(|||
              increase(tradeops_eventbus_handler_errors_total{%(selector)s}[%(w)s]) > %(max)s
            |||, { w: w('5m'), max: a.num(t.eventbusHandlerErrorsPer5m) }),
            'for': '5m',
            summary: 'Event handlers keep raising exceptions.',
            description: 'Runtime {{ $labels.target }}: event handlers raised {{ $value | printf "%.0f" }} exceptions in 5 minutes (more than ' + a.num(t.eventbusHandlerErrorsPer5m) + ' for 5 minutes).',
          }),
          alert({
            name: 'EventBusDispatchLagHigh',
            severity: 'warning',
            expr: fmt('tradeops_eventbus_dispatch_lag_seconds{%(selector)s} > %(max)s', { max: a.num(t.eventbusDispatchLagSeconds) }),
            'for': '2m',
            summary: 'Events wait long in the event-bus queue before dispatch.',
            description: 'Runtime {{ $labels.target }}: the oldest queued event has waited {{ $value | humanizeDuration }} for dispatch (over %ss for 2 minutes).' % a.num(t.eventbusDispatchLagSeconds),
          }),
          alert({
            name: 'EventBusDispatchStalled',
            severity: 'critical',
            // Needs no calendar gate: it fires only while events are published.
            expr: fmt(|||
              time() - tradeops_eventbus_last_event_timestamp_seconds{%(selector)s} > %(max)s
              and on (job, instance, target)
              increase(tradeops_eventbus_published_events_total{%(selector)s}[%(stallWindow)s]) > 0
            |||, { max: a.num(t.eventbusDispatchStallSeconds) }),
            'for': '1m',
            summary: 'Events are published on the event bus but none is dispatched.',
            description: 'Runtime {{ $labels.target }} has dispatched no event for {{ $value | humanizeDuration }} while events are being published: the bus worker is stuck.',
          }),
          alert({
            name: 'EventBusNoEventsPublished',
            severity: 'critical',
            // A flat counter in session; the counter must be served now (a
            // withdrawn series is EventBusHealthEndpointDown, not idleness).
            expr: fmt(|||
              increase(tradeops_eventbus_published_events_total{%(selector)s}[%(idleWindow)s]) == 0
              and on (job, instance, target)
              tradeops_eventbus_published_events_total{%(selector)s}
              and on (target)
              %(gate)s
            |||),
            'for': '1m',
            summary: 'Nothing is published on the event bus while the market is in session.',
            description: 'No event has been published on the event bus of runtime {{ $labels.target }} for %s while its trading calendar is in session: its publishers (ingest, strategies, telemetry) have stopped.' % spoken(t.eventbusIdleSeconds),
          }),
        ]),
        // The canary runs on the exporter's schedule through the transport, which
        // does not idle with the market: no calendar gate.
        a.group('tradeops-eventbus-canary', [
          a.record(
            'tradeops:eventbus_canary_roundtrip_seconds:p95_10m',
            fmt(|||
              histogram_quantile(0.95, sum by (%(by)s, le) (rate(tradeops_eventbus_canary_roundtrip_seconds_bucket{%(selector)s}[%(w)s])))
            |||, { by: by, w: w('10m') })
          ),
          a.record(
            'tradeops:eventbus_canary_lost:ratio_5m',
            fmt(|||
              increase(tradeops_eventbus_canary_lost_total{%(selector)s}[%(w)s])
              / on (job, instance, target)
              (increase(tradeops_eventbus_canary_sent_total{%(selector)s}[%(w)s]) > 0)
            |||, { w: w('5m') })
          ),
          alert({
            name: 'EventBusCanaryLost',
            severity: 'warning',
            expr: fmt('increase(tradeops_eventbus_canary_lost_total{%(selector)s}[%(w)s]) > 0', { w: w('15m') }),
            'for': '1m',
            summary: 'Event-bus canaries were lost on the bus transport.',
            description: 'Runtime {{ $labels.target }}: canaries not read back from the bus transport within their deadline in 15 minutes: {{ $value | printf "%.0f" }}.',
          }),
          alert({
            name: 'EventBusCanaryLossHigh',
            severity: 'critical',
            expr: fmt(|||
              tradeops:eventbus_canary_lost:ratio_5m >= %(ratio)s
              and on (job, instance, target)
              increase(tradeops_eventbus_canary_sent_total{%(selector)s}[%(w)s]) >= %(min)s
            |||, { w: w('5m'), ratio: a.num(t.eventbusCanaryLossRatio), min: a.num(t.eventbusCanaryMinCount) }),
            'for': '2m',
            summary: 'The bus transport loses most event-bus canaries.',
            description: 'Runtime {{ $labels.target }}: {{ $value | humanizePercentage }} of the canaries sent in 5 minutes were lost, for 2 minutes: the bus transport is not delivering.',
          }),
          alert({
            name: 'EventBusCanarySlow',
            severity: 'warning',
            expr: fmt(|||
              tradeops:eventbus_canary_roundtrip_seconds:p95_10m > %(max)s
              and on (job, instance, target)
              increase(tradeops_eventbus_canary_roundtrip_seconds_count{%(selector)s}[%(w)s]) >= %(min)s
            |||, { w: w('10m'), max: a.num(t.eventbusCanaryRoundtripSeconds), min: a.num(t.eventbusCanaryMinCount) }),
            'for': '5m',
            summary: 'Event-bus canaries take long to cross the bus transport.',
            description: 'Runtime {{ $labels.target }}: the p95 canary round trip over 10 minutes is {{ $value | humanizeDuration }} (over %ss for 5 minutes).' % a.num(t.eventbusCanaryRoundtripSeconds),
          }),
          alert({
            name: 'EventBusCanaryOutOfOrder',
            severity: 'warning',
            expr: fmt('increase(tradeops_eventbus_canary_out_of_order_total{%(selector)s}[%(w)s]) > 0', { w: w('15m') }),
            'for': '1m',
            summary: 'The bus transport delivered event-bus canaries out of order.',
            description: 'Runtime {{ $labels.target }}: canaries read back after a canary published later, in 15 minutes: {{ $value | printf "%.0f" }}.',
          }),
        ]),
      ],
    },
  },
}
