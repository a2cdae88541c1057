// The SLA packet the on-call operator watches for the whole session (seed 004,
// section 3): component heartbeats, order round-trip latency, position drift
// and the risk service's heartbeat. One alert (or a warn/page pair) per row.
local a = import '../../bundle/lib/alerts.libsonnet';

{
  _config+:: {
    sla+: {
      // The trading runtime is scraped by Prometheus under its own job; the
      // position-drift contract metric (docs/contract.md) is selected with this.
      runtimeSelector: 'job="trading-runtime"',
      // A heartbeat key that vanished (expired, deleted) keeps its age from the
      // last timestamp seen within this lookback; a key not seen for longer
      // counts as missing for at least the lookback.
      heartbeatLookback: '1h',
      // The risk service's heartbeat may miss this many cycles, no more.
      riskMissedCycles: 3,
    },
  },

  rules+:: {
    local cfg = $._config,
    local sla = cfg.sla,
    local alert(o) = a.alert(cfg, o { area: 'sla', dashboard: 'overview', vars: {} }),
    local w(d) = a.window(cfg, d),

    // Seconds since each heartbeat key (of `names`, a regex) was last written,
    // per Redis target. A key that has vanished keeps counting from the last
    // timestamp seen within the lookback; a key missing for longer reads as the
    // lookback itself (a lower bound). Only keys whose target answered its last
    // probe run are joined later (through the max-gap gauge, withdrawn with the
    // data), so a Redis that is down is left to RedisDown.
    local heartbeatAge(names) = std.rstripChars(|||
      (
        time() - max by (job, instance, target, heartbeat) (
          last_over_time(tradeops_redis_heartbeat_timestamp_seconds{%(selector)s, heartbeat=~"%(names)s"}[%(lookback)s])
        )
        or on (job, instance, target, heartbeat)
        0 * max by (job, instance, target, heartbeat) (tradeops_redis_heartbeat_present{%(selector)s, heartbeat=~"%(names)s"} == 0)
        + %(lookbackSeconds)d
      )
    ||| % (cfg {
             names: names,
             lookback: w(sla.heartbeatLookback),
             lookbackSeconds: a.seconds(w(sla.heartbeatLookback)),
           }), '\n'),

    // The key's calendar (from its max-gap gauge) is in session past its warm-up.
    local keyInSession = 'and on (calendar) ' + a.inSession,

    // The FIX session's calendar (its fix_store target) is in session.
    local fixInSession = 'and on (session) label_replace(' + a.targetInSession('fix_store') + ', "session", "$1", "target", "(.*)")',

    local latency = 'tradeops_fix_session_order_ack_latency_seconds',

    sla: {
      groups: [
        a.group('tradeops-sla', [
          // Row 1: ingestion, feature store and execution heartbeats.
          alert({
            name: 'SlaHeartbeatMissed',
            severity: 'warning',
            expr: |||
              %(age)s
              > on (job, instance, target, heartbeat) group_left (calendar)
              tradeops_redis_heartbeat_max_gap_seconds{%(selector)s}
              %(gate)s
            ||| % (cfg { age: heartbeatAge(sla.heartbeats), gate: keyInSession }),
            'for': '30s',
            summary: 'An SLA heartbeat missed a beat during the session.',
            description: 'Heartbeat {{ $labels.heartbeat }} in Redis {{ $labels.target }} has not been written for {{ $value | humanizeDuration }}, over its maximum gap, while calendar {{ $labels.calendar }} is in session: one beat missed. A second miss pages.',
          }),
          alert({
            name: 'SlaHeartbeatMissedTwice',
            severity: 'critical',
            expr: |||
              %(age)s
              > on (job, instance, target, heartbeat) group_left (calendar)
              (2 * tradeops_redis_heartbeat_max_gap_seconds{%(selector)s})
              %(gate)s
            ||| % (cfg { age: heartbeatAge(sla.heartbeats), gate: keyInSession }),
            'for': '30s',
            summary: 'An SLA heartbeat missed two consecutive beats during the session.',
            description: 'Heartbeat {{ $labels.heartbeat }} in Redis {{ $labels.target }} has not been written for {{ $value | humanizeDuration }}, over twice its maximum gap, while calendar {{ $labels.calendar }} is in session: the component has stopped beating.',
          }),

          // Row 2: order round trip p95, per FIX session.
          a.record(
            'tradeops:fix_order_ack_latency_seconds:p95',
            |||
              histogram_quantile(0.95, sum by (session, le) (rate(%(latency)s_bucket{%(selector)s}[%(w)s])))
              and on (session) sum by (session) (increase(%(latency)s_count{%(selector)s}[%(w)s])) > 0
            ||| % (cfg { latency: latency, w: w('5m') })
          ),
          alert({
            name: 'SlaOrderLatencyHigh',
            severity: 'critical',
            labels: { team: 'execution' },
            expr: |||
              tradeops:fix_order_ack_latency_seconds:p95 >= %(p95)s
              and on (session) sum by (session) (increase(%(latency)s_count{%(selector)s}[%(w)s])) >= %(minOrders)s
              %(gate)s
            ||| % (cfg {
                     latency: latency,
                     w: w('5m'),
                     p95: a.num(sla.orderLatencyP95Seconds),
                     minOrders: a.num(sla.orderLatencyMinOrders),
                     gate: fixInSession,
                   }),
            'for': '2m',
            summary: 'Order round-trip latency breaches the SLA.',
            description: 'FIX session {{ $labels.session }}: p95 from order entry to the venue answer is {{ $value | humanizeDuration }} over the last 5 minutes (SLA: under %(sla)s, judged from %(min)s orders). Throttle order entry on this session and escalate to the execution trader.' % {
              sla: '%dms' % std.floor(sla.orderLatencyP95Seconds * 1000 + 0.5),
              min: a.num(sla.orderLatencyMinOrders),
            },
          }),

          // Row 3: position drift against target, a contract metric of the
          // trading runtime (docs/contract.md), scraped under its own job.
          alert({
            name: 'SlaPositionDrift',
            severity: 'critical',
            labels: { team: 'risk' },
            expr: 'tradeops_runtime_position_drift_ratio{%(runtimeSelector)s} >= %(ratio)s' % (sla { ratio: a.num(sla.positionDriftRatio) }),
            'for': '2m',
            summary: 'A book drifts from its target position beyond the SLA.',
            description: 'Book {{ $labels.book }}, strategy {{ $labels.strategy }}: the position is {{ $value | humanizePercentage }} of the target gross notional away from target for 2 minutes (SLA: under %(pct)s%%). Engage the risk officer and evaluate a halt.' % {
              pct: a.num(sla.positionDriftRatio * 100),
            },
          }),
          // The runtime is scraped but does not export the contract metric:
          // row 3 of the packet is unwatched. Quiet where the runtime is not
          // scraped at all (no `up` series for its job).
          alert({
            name: 'SlaPositionDriftMissing',
            severity: 'warning',
            expr: |||
              up{%(runtimeSelector)s} == 1
              unless on (job, instance) tradeops_runtime_position_drift_ratio{%(runtimeSelector)s}
            ||| % sla,
            'for': '10m',
            summary: 'The trading runtime does not export position drift.',
            description: 'The trading runtime {{ $labels.instance }} (job {{ $labels.job }}) is scraped but has exported no tradeops_runtime_position_drift_ratio series for 10 minutes: position drift against target is not watched.',
          }),

          // Row 4: the risk service's heartbeat, judged in risk cycles.
          alert({
            name: 'SlaRiskHeartbeatMissed',
            severity: 'critical',
            labels: { team: 'risk' },
            expr: |||
              %(age)s
              > on (job, instance, target, heartbeat) group_left (calendar)
              (0 * tradeops_redis_heartbeat_max_gap_seconds{%(selector)s} + %(limit)s)
              %(gate)s
            ||| % (cfg {
                     age: heartbeatAge(sla.riskHeartbeat),
                     limit: a.num(sla.riskMissedCycles * sla.riskCycleSeconds),
                     gate: keyInSession,
                   }),
            'for': '30s',
            summary: 'The risk service heartbeat missed more cycles than allowed.',
            description: 'Risk heartbeat {{ $labels.heartbeat }} in Redis {{ $labels.target }} has not been written for {{ $value | humanizeDuration }}, more than %(cycles)s cycles of %(cycle)ss, while calendar {{ $labels.calendar }} is in session. Initiate kill-switch preparation.' % {
              cycles: a.num(sla.riskMissedCycles),
              cycle: a.num(sla.riskCycleSeconds),
            },
          }),
        ]),
      ],
    },
  },
}
