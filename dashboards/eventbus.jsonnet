// The runtime's event bus: its health endpoint (status, worker, subscribers),
// queue and dispatch lag, published, dropped and failed events, and the
// exporter's canary on the bus transport (losses, round trip, order).
local g = import 'lib/grafana.libsonnet';

{
  grafanaDashboards+:: {
    eventbus:
      local cfg = $._config;
      local t = cfg.thresholds;
      local s = {
        selector: cfg.selector,
        vars: 'target=~"$target"',
        ok: t.eventbusStatusOk,
        failing: t.eventbusStatusFailing,
      };
      // 0 ok, 1 degraded, 2 failing, per target and reported status.
      local statusCode = |||
        max by (target, status) (
          (tradeops_eventbus_status{%(selector)s, %(vars)s, status=~"%(failing)s"} == 1) * 2
          or
          (tradeops_eventbus_status{%(selector)s, %(vars)s, status!~"%(ok)s|%(failing)s"} == 1)
          or
          (tradeops_eventbus_status{%(selector)s, %(vars)s, status=~"%(ok)s"} == 1) * 0
        )
      ||| % s;
      local statusMappings = [{
        type: 'value',
        options: {
          '0': { text: 'OK', color: 'green', index: 0 },
          '1': { text: 'DEGRADED', color: 'orange', index: 1 },
          '2': { text: 'FAILING', color: 'red', index: 2 },
        },
      }];
      local dashed(regex) = {
        matcher: { id: 'byRegexp', options: regex },
        properties: [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }],
      };
      g.dashboard(cfg, 'eventbus', {
        description: "The runtime's event bus: whether its health endpoint answers and reports the bus healthy, how full its queue is and how long events wait, what is published, dropped and failing, and whether the exporter's canary crosses the bus transport in time and in order.",
        tags: ['eventbus'],
        variables: [
          g.queryVariable('target', 'Runtime', 'tradeops_up{%(selector)s, kind="eventbus"}' % s, 'target'),
        ],
        panels: [
          g.row('Health endpoint'),
          g.stat({
            title: 'Probe up',
            description: "Whether the last probe run of each runtime succeeded (health endpoint and canary). Red: the failed part's series are withdrawn; when the health panels next to it are empty too, EventBusHealthEndpointDown pages (refused, timeout, auth or an unmappable document). Click through to the exporter dashboard for the reason.",
            unit: 'none',
            thresholds: g.thresholds([[null, 'red'], [1, 'green']]),
            mappings: g.boolMappings('down', 'up'),
            fieldLinks: [g.dashboardLink(cfg, 'exporter', 'Probe errors of ${__field.labels.target}', 'var-kind=eventbus&var-target=${__field.labels.target}')],
            targets: [g.target('tradeops_up{%(selector)s, kind="eventbus", %(vars)s}' % s, '{{target}}', instant=true)],
            w: 4,
          }),
          g.stat({
            title: 'HTTP status',
            description: "HTTP status code of the last health request. Amber from 300, red from 500: a 503 is how a runtime says unhealthy, and EventBusStatusFailing pages after 2 minutes. Check the runtime's own log.",
            unit: 'none',
            thresholds: g.thresholds([[null, 'green'], [300, 'orange'], [500, 'red']]),
            targets: [g.target('tradeops_eventbus_http_status_code{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
            w: 4,
          }),
          g.stat({
            title: 'Bus status',
            description: "The overall bus status the runtime reports, by name. Red FAILING (status %(failing)s): EventBusStatusFailing pages; amber DEGRADED (anything but %(ok)s, including unknown values): EventBusStatusDegraded warns after 10 minutes. The runtime's health document says which component is unhealthy." % s,
            unit: 'none',
            thresholds: g.statusThresholds,
            mappings: statusMappings,
            options: { textMode: 'value_and_name' },
            targets: [g.target(statusCode, '{{target}}: {{status}}', instant=true)],
            w: 4,
          }),
          g.stat({
            title: 'Worker',
            description: 'Whether the runtime reports its bus worker running. Red "stopped": EventBusNotRunning pages; published events are neither dispatched nor kept (they count as dropped). Restart the bus worker or the runtime.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'red'], [1, 'green']]),
            mappings: g.boolMappings('stopped', 'running'),
            targets: [g.target('tradeops_eventbus_running{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
            w: 4,
          }),
          g.stat({
            title: 'Subscribers',
            description: 'Handlers subscribed to the bus. Red at 0: while events are published, EventBusNoSubscribers pages, nothing consumes them; check that the consuming components started and registered their handlers.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'red'], [1, 'green']]),
            targets: [g.target('tradeops_eventbus_subscribers{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
            w: 4,
          }),
          g.stat({
            title: 'Calendar in session',
            description: "Whether the runtime's trading calendar is in session past its warm-up. Only in session does EventBusNoEventsPublished page on a silent bus; out of session, no publishing is normal.",
            unit: 'none',
            thresholds: g.thresholds([[null, 'text'], [1, 'green']]),
            mappings: g.boolMappings('closed', 'in session', 'text'),
            targets: [g.target('tradeops:target_in_session{kind="eventbus", %(vars)s}' % s, '{{target}}', instant=true)],
            w: 4,
          }),
          g.stateTimeline({
            title: 'Bus status over time',
            description: 'The reported bus status of each runtime over the time range: when it went degraded or failing and for how long. Compare a red band with the queue, drops and handler errors below to see what the runtime was reacting to.',
            unit: 'none',
            thresholds: g.statusThresholds,
            mappings: statusMappings,
            targets: [g.target(statusCode, '{{target}}: {{status}}')],
            h: 6,
          }),
          g.row('Queue and dispatch'),
          g.stat({
            title: 'Queue fill',
            description: 'Events waiting in the bus queue as a share of its capacity (empty for an unbounded queue). Red from %d %%: EventBusQueueNearCapacity pages, at capacity new events are dropped; amber from half of that. Handlers are slower than publishers: see the dispatch lag and the handler errors.' % std.floor(100 * t.eventbusQueueRatio + 0.5),
            unit: 'percentunit',
            decimals: 0,
            thresholds: g.rag(t.eventbusQueueRatio / 2, t.eventbusQueueRatio),
            targets: [g.target('tradeops:eventbus_queue_fill:ratio{%(vars)s}' % s, '{{target}}', instant=true)],
            w: 6,
          }),
          g.stat({
            title: 'Queue depth',
            description: 'Events waiting in the bus queue. Amber from %d: when it also keeps growing for 5 minutes, EventBusQueueGrowing warns (the one alert for unbounded queues). A slow or stuck handler is the usual cause.' % t.eventbusQueueBacklogEvents,
            unit: 'short',
            thresholds: g.thresholds([[null, 'green'], [t.eventbusQueueBacklogEvents, 'orange']]),
            targets: [g.target('tradeops_eventbus_queue_depth{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
            w: 6,
          }),
          g.stat({
            title: 'Dispatch lag',
            description: "Age of the oldest event still waiting for dispatch: how far the bus consumers are behind. Amber from %g s: EventBusDispatchLagHigh warns after 2 minutes. Look for a slow handler (handler errors, the runtime's log)." % t.eventbusDispatchLagSeconds,
            unit: 's',
            thresholds: g.thresholds([[null, 'green'], [t.eventbusDispatchLagSeconds, 'orange']]),
            targets: [g.target('tradeops_eventbus_dispatch_lag_seconds{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
            w: 6,
          }),
          g.stat({
            title: 'Last dispatch',
            description: 'Time since the bus last dispatched an event. Red from %d s: while events are still being published, EventBusDispatchStalled pages, the bus worker is stuck (restart it). When nothing is published either (the "Published" panel is flat), red only means a quiet bus.' % t.eventbusDispatchStallSeconds,
            unit: 's',
            thresholds: g.thresholds([[null, 'green'], [t.eventbusDispatchStallSeconds, 'red']]),
            targets: [g.target('time() - tradeops_eventbus_last_event_timestamp_seconds{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
            w: 6,
          }),
          g.timeseries({
            title: 'Queue depth and capacity',
            description: 'Events waiting in the bus queue, with its capacity dashed (bounded queues). A depth that climbs towards the capacity ends in drops; one that climbs without a capacity is EventBusQueueGrowing.',
            unit: 'short',
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [
              g.target('tradeops_eventbus_queue_depth{%(selector)s, %(vars)s}' % s, '{{target}}'),
              g.target('tradeops_eventbus_queue_capacity{%(selector)s, %(vars)s}' % s, 'capacity {{target}}'),
            ],
            overrides: [dashed('capacity .*')],
          }),
          g.timeseries({
            title: 'Dispatch lag over time',
            description: 'Age of the oldest event waiting for dispatch per runtime, against the %g s line where EventBusDispatchLagHigh warns. Spikes that recover are bursts; a line that stays up means the handlers cannot keep up.' % t.eventbusDispatchLagSeconds,
            unit: 's',
            thresholds: g.thresholds([[null, 'green'], [t.eventbusDispatchLagSeconds, 'orange']]),
            targets: [g.target('tradeops_eventbus_dispatch_lag_seconds{%(selector)s, %(vars)s}' % s, '{{target}}')],
          }),
          g.row('Events'),
          g.timeseries({
            title: 'Published',
            description: 'Events published on the bus per second. A drop to zero while the calendar is in session is EventBusNoEventsPublished (its publishers, ingest, strategies and telemetry, stopped); publishing while nothing is dispatched is EventBusDispatchStalled.',
            unit: 'ops',
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [g.target('sum by (target) (rate(tradeops_eventbus_published_events_total{%(selector)s, %(vars)s}[$__rate_interval]))' % s, '{{target}}')],
            w: 8,
          }),
          g.timeseries({
            title: 'Dropped',
            description: 'Events the bus dropped per interval (queue full or worker not running); those events are lost. Above %d in 5 minutes EventBusEventsDropped pages: see the queue fill and the worker state above.' % t.eventbusDroppedEventsPer5m,
            unit: 'short',
            thresholds: g.thresholds([[null, 'green'], [1, 'red']]),
            targets: [g.target('sum by (target) (increase(tradeops_eventbus_dropped_events_total{%(selector)s, %(vars)s}[$__rate_interval]))' % s, '{{target}}')],
            w: 8,
          }),
          g.timeseries({
            title: 'Handler errors',
            description: "Exceptions raised by event handlers per second. Over %d in 5 minutes (the amber line, %.3g/s) for 5 minutes, EventBusHandlerErrors warns: the runtime's log names the handler and the exception." % [t.eventbusHandlerErrorsPer5m, t.eventbusHandlerErrorsPer5m / 300],
            unit: 'ops',
            thresholds: g.thresholds([[null, 'green'], [t.eventbusHandlerErrorsPer5m / 300, 'orange']]),
            targets: [g.target('sum by (target) (rate(tradeops_eventbus_handler_errors_total{%(selector)s, %(vars)s}[$__rate_interval]))' % s, '{{target}}')],
            w: 8,
          }),
          g.row('Canary on the bus transport'),
          g.stat({
            title: 'Canaries lost (5m)',
            description: 'Share of the canaries sent in 5 minutes that were not read back within their deadline. Amber above 0 (EventBusCanaryLost warns on any loss in 15 minutes), red from %d %% (EventBusCanaryLossHigh pages: the transport is not delivering). Check the bus transport first (the Kafka topic or Redis stream the canary travels on: its brokers or server on their dashboards).' % std.floor(100 * t.eventbusCanaryLossRatio + 0.5),
            unit: 'percentunit',
            decimals: 0,
            thresholds: g.thresholds([[null, 'green'], [0.000001, 'orange'], [t.eventbusCanaryLossRatio, 'red']]),
            targets: [g.target('tradeops:eventbus_canary_lost:ratio_5m{%(vars)s}' % s, '{{target}}', instant=true)],
            w: 6,
          }),
          g.stat({
            title: 'Canary round trip p95 (10m)',
            description: 'p95 of the time from publishing a canary on the bus transport to reading it back, over 10 minutes. Amber from %g s: EventBusCanarySlow warns after 5 minutes (with at least %d canaries). A slow transport delays every event of the runtime.' % [t.eventbusCanaryRoundtripSeconds, t.eventbusCanaryMinCount],
            unit: 's',
            thresholds: g.thresholds([[null, 'green'], [t.eventbusCanaryRoundtripSeconds, 'orange']]),
            targets: [g.target('tradeops:eventbus_canary_roundtrip_seconds:p95_10m{%(vars)s}' % s, '{{target}}', instant=true)],
            w: 6,
          }),
          g.stat({
            title: 'Last canary round trip',
            description: 'Round trip of the most recent canary read back, against the same %g s as the p95. A single slow canary is noise; many make the p95 amber.' % t.eventbusCanaryRoundtripSeconds,
            unit: 's',
            thresholds: g.thresholds([[null, 'green'], [t.eventbusCanaryRoundtripSeconds, 'orange']]),
            targets: [g.target('tradeops_eventbus_canary_last_roundtrip_seconds{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
            w: 6,
          }),
          g.stat({
            title: 'Last canary received',
            description: 'Time since a canary was last read back within its deadline. Amber after 15 minutes: the canaries sent since were all lost (EventBusCanaryLost) or none was sent (the canary part of the probe fails: see "Probe up").',
            unit: 's',
            thresholds: g.thresholds([[null, 'green'], [900, 'orange']]),
            targets: [g.target('time() - tradeops_eventbus_canary_last_success_timestamp_seconds{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
            w: 6,
          }),
          g.timeseries({
            title: 'Canary round trip',
            description: 'The p95 canary round trip over 10 minutes and the last round trip per runtime, against the %g s line where EventBusCanarySlow warns. A rising p95 means the transport is slowing down.' % t.eventbusCanaryRoundtripSeconds,
            unit: 's',
            thresholds: g.thresholds([[null, 'green'], [t.eventbusCanaryRoundtripSeconds, 'orange']]),
            targets: [
              g.target('tradeops:eventbus_canary_roundtrip_seconds:p95_10m{%(vars)s}' % s, 'p95 {{target}}'),
              g.target('tradeops_eventbus_canary_last_roundtrip_seconds{%(selector)s, %(vars)s}' % s, 'last {{target}}'),
            ],
          }),
          g.timeseries({
            title: 'Canaries',
            description: 'Canaries sent, received in time, lost and received out of order per interval. Lost: EventBusCanaryLost warns (EventBusCanaryLossHigh pages when most are lost); out of order: EventBusCanaryOutOfOrder warns, the transport reorders events. Sent but neither received nor lost means the probe is still waiting for them.',
            unit: 'short',
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [
              g.target('sum by (target) (increase(tradeops_eventbus_canary_sent_total{%(selector)s, %(vars)s}[$__rate_interval]))' % s, 'sent {{target}}'),
              g.target('sum by (target) (increase(tradeops_eventbus_canary_received_total{%(selector)s, %(vars)s}[$__rate_interval]))' % s, 'received {{target}}'),
              g.target('sum by (target) (increase(tradeops_eventbus_canary_lost_total{%(selector)s, %(vars)s}[$__rate_interval]))' % s, 'lost {{target}}'),
              g.target('sum by (target) (increase(tradeops_eventbus_canary_out_of_order_total{%(selector)s, %(vars)s}[$__rate_interval]))' % s, 'out of order {{target}}'),
            ],
            overrides: [
              { matcher: { id: 'byRegexp', options: 'lost .*' }, properties: [{ id: 'color', value: { mode: 'fixed', fixedColor: 'red' } }] },
              { matcher: { id: 'byRegexp', options: 'out of order .*' }, properties: [{ id: 'color', value: { mode: 'fixed', fixedColor: 'orange' } }] },
            ],
          }),
        ],
      }),
  },
}
