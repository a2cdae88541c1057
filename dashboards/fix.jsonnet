// FIX sessions from both sides: the active monitoring session (kind `fix`:
// can a client log on to the venue right now, how long each phase takes, why
// it fails) and the passive reader of a QuickFIX engine's files (kind
// `fix_store`: logged on, heartbeats, sequence numbers, resends, rejects and
// order acknowledgements of the production session). FIX data series carry
// `session` (the target name); the framework series carry `kind` and `target`.
local g = import 'lib/grafana.libsonnet';

{
  grafanaDashboards+:: {
    fix:
      local cfg = $._config;
      local t = cfg.thresholds;
      local sla = cfg.sla;
      local s = {
        selector: cfg.selector,
        vars: 'session=~"$session"',
        targets: 'kind=~"fix|fix_store", target=~"$session"',
      };
      local rtt = t.fixTestRequestRoundtripSeconds;
      local dashed(re) = {
        matcher: { id: 'byRegexp', options: re },
        properties: [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }],
      };
      // The monitoring session's result: 0 failing inside its schedule, 1 ok,
      // 2 outside its schedule (the probe does not connect then).
      local monitoring = 'tradeops_fix_probe_success{%(selector)s, %(vars)s} + 2 * (1 - tradeops_fix_probe_in_schedule{%(selector)s, %(vars)s})' % s;
      local monitoringMappings = [{
        type: 'value',
        options: {
          '0': { text: 'FAILING', color: 'red', index: 0 },
          '1': { text: 'OK', color: 'green', index: 1 },
          '2': { text: 'OUT OF SCHEDULE', color: 'text', index: 2 },
        },
      }];
      g.dashboard(cfg, 'fix', {
        description: 'FIX sessions: whether the monitoring session can log on to each venue and where it fails, and what each production session is doing (logged on, heartbeats, sequence numbers, resends, rejects, order acknowledgements).',
        tags: ['fix'],
        variables: [
          g.queryVariable('session', 'Session', 'tradeops_up{%(selector)s, kind=~"fix|fix_store"}' % s, 'target'),
        ],
        panels: [
          g.row('Sessions'),
          g.stat({
            title: 'Probe up',
            description: "Whether each FIX target's last probe run succeeded (kind fix: the monitoring session; kind fix_store: reading the engine's store and logs). Red: for fix, the session failed (the panels below say why; FixMonitoringNotReporting warns when it failed without reporting a session); for fix_store, the files could not be read and the session's series are withdrawn (ProbeTargetDown): check the paths and permissions named in the exporter log.",
            unit: 'none',
            thresholds: g.thresholds([[null, 'red'], [1, 'green']]),
            mappings: g.boolMappings('down', 'up'),
            targets: [g.target('tradeops_up{%(selector)s, %(targets)s}' % s, '{{target}} ({{kind}})', instant=true)],
            w: 8,
          }),
          g.stat({
            title: 'Schedule and calendar',
            description: "Whether each session is inside its configured trading schedule, and whether the target's trading calendar is in session past its warm-up. The logon, heartbeat and order alerts wait for both: outside them a logged-out session or a failing monitoring session is expected. When a session should be open but shows closed here, check the schedule: and calendar: of the target in the exporter config.",
            unit: 'none',
            thresholds: g.thresholds([[null, 'text'], [1, 'green']]),
            mappings: g.boolMappings('closed', 'open', 'text'),
            targets: [
              g.target('tradeops_fix_probe_in_schedule{%(selector)s, %(vars)s}' % s, '{{session}} schedule (monitoring)', instant=true),
              g.target('tradeops_fix_session_in_schedule{%(selector)s, %(vars)s}' % s, '{{session}} schedule', instant=true),
              g.target('max by (target, calendar) (tradeops:target_in_session{%(targets)s})' % s, '{{target}} calendar {{calendar}}', instant=true),
            ],
            w: 16,
          }),
          g.table({
            title: 'Firing FIX alerts',
            description: 'Every alert firing now for the selected sessions (FIX alerts, the order-latency SLA alert and ProbeTargetDown of a fix_store target), with its severity. A critical makes the session red on the overview; the runbook of each alert is linked from its notification. Empty is healthy.',
            thresholds: g.statusThresholds,
            targets: [g.target(|||
              sum by (alertname, severity, area, session) (
                ALERTS{alertstate="firing", session!="", %(vars)s}
                or
                label_replace(ALERTS{alertstate="firing", %(targets)s}, "session", "$1", "target", "(.*)")
              )
            ||| % s, '', instant=true)],
            transformations: [{ id: 'organize', options: { excludeByName: { Time: true, Value: true } } }],
            h: 6,
          }),
          g.stateTimeline({
            title: 'Session state over time',
            description: 'Over the time range: whether each probe run succeeded, whether the monitoring session logged on (grey outside its schedule) and whether the production session was logged on. Red bands are when it broke; line them up with the events and resends below to see why.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'red'], [1, 'green'], [2, 'text']]),
            mappings: [{
              type: 'value',
              options: {
                '0': { text: 'down', color: 'red', index: 0 },
                '1': { text: 'up', color: 'green', index: 1 },
                '2': { text: 'out of schedule', color: 'text', index: 2 },
              },
            }],
            targets: [
              g.target('tradeops_up{%(selector)s, %(targets)s}' % s, '{{target}} probe ({{kind}})'),
              g.target(monitoring, '{{session}} monitoring session'),
              g.target('tradeops_fix_session_logged_on{%(selector)s, %(vars)s}' % s, '{{session}} logged on'),
            ],
          }),

          g.row('Monitoring session (active probe, kind fix)'),
          g.stat({
            title: 'Monitoring session',
            description: 'Result of the last monitoring session of each venue: OK (logged on, TestRequest answered, logged out), FAILING inside its schedule, or OUT OF SCHEDULE (the probe does not connect then). Red inside the schedule and calendar: FixMonitoringSessionFailing pages after 1 minute; the reason is next to it.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'red'], [1, 'green'], [2, 'text']]),
            mappings: monitoringMappings,
            targets: [g.target(monitoring, '{{session}}', instant=true)],
            w: 6,
            h: 8,
          }),
          g.stat({
            title: 'Failure reason',
            description: "Why the last monitoring session failed. refused: nothing listens at the address (venue or gateway down, firewall); timeout: no answer before the deadline (hung acceptor, black-holed network); logon_rejected: CompIDs, password or the venue's session hours; logout_received, garbled, bad_checksum, seqnum_too_low, other: a protocol problem at the acceptor. Red is a failing session; 'none' is a success or out of schedule.",
            unit: 'none',
            thresholds: g.thresholds([[null, 'green'], [1, 'red']]),
            mappings: g.boolMappings('ok', 'failing', 'green', 'red'),
            options: { textMode: 'value_and_name' },
            targets: [g.target(|||
              (tradeops_fix_probe_failure{%(selector)s, %(vars)s, reason!="out_of_schedule"} == 1)
              or on (session)
              label_replace(tradeops_fix_probe_success{%(selector)s, %(vars)s}, "reason", "none", "", "") * 0
            ||| % s, '{{session}}: {{reason}}', instant=true)],
            w: 6,
            h: 8,
          }),
          g.timeseries({
            title: 'Monitoring session phase timings',
            description: 'Time of each phase of the monitoring session: TCP (and TLS) connect, Logon round trip (the acceptor\'s session and authentication layer), TestRequest/Heartbeat round trip (the engine itself) and Logout. A slow connect points at the network; a slow logon or TestRequest at the venue\'s engine. The phases must fit in the probe timeout (see "Probe run duration / deadline").',
            unit: 's',
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [
              g.target('tradeops_fix_probe_connect_seconds{%(selector)s, %(vars)s}' % s, '{{session}} connect'),
              g.target('tradeops_fix_probe_logon_seconds{%(selector)s, %(vars)s}' % s, '{{session}} logon'),
              g.target('tradeops_fix_probe_test_request_roundtrip_seconds{%(selector)s, %(vars)s}' % s, '{{session}} test request'),
              g.target('tradeops_fix_probe_logout_seconds{%(selector)s, %(vars)s}' % s, '{{session}} logout'),
            ],
          }),
          g.timeseries({
            title: 'Monitoring session failures by reason',
            description: 'Failed monitoring sessions per interval, by session and FIX reason (out_of_schedule left out). Any bar is a failed logon attempt; a steady line inside the schedule is what FixMonitoringSessionFailing pages on. The reason tells where to look (see "Failure reason").',
            unit: 'short',
            thresholds: g.thresholds([[null, 'green'], [1, 'red']]),
            thresholdsStyle: 'off',
            targets: [g.target('sum by (session, reason) (increase(tradeops_fix_probe_failures_total{%(selector)s, %(vars)s, reason!="out_of_schedule"}[$__rate_interval]))' % s, '{{session}}: {{reason}}')],
            w: 8,
          }),
          g.timeseries({
            title: 'TestRequest round trip',
            description: "TestRequest to Heartbeat round trip of the monitoring session (FixMonitoringTestRequestSlow) and of the production engine's own TestRequests, read from its log (FixSessionTestRequestSlow). Amber above %g s: both warn after their for: in session. When amber, the venue's engine or the network is slow: compare with the connect time above." % rtt,
            unit: 's',
            thresholds: g.thresholds([[null, 'green'], [rtt, 'orange']]),
            targets: [
              g.target('tradeops_fix_probe_test_request_roundtrip_seconds{%(selector)s, %(vars)s}' % s, '{{session}} monitoring'),
              g.target('tradeops_fix_session_test_request_roundtrip_seconds{%(selector)s, %(vars)s}' % s, '{{session}} engine'),
            ],
            w: 8,
          }),
          g.timeseries({
            title: 'Probe run duration / deadline',
            description: "Each FIX target's last probe run time as a share of its deadline. Amber from %g (ProbeNearDeadline warns), red at 1 (the run was cut off: a monitoring session fails as timeout, a store reader fails). When red, the venue is slow to answer or the engine's logs are large: see the phase timings and the log backlog." % t.probeDeadlineRatio,
            unit: 'percentunit',
            thresholds: g.rag(t.probeDeadlineRatio, 1),
            targets: [g.target('tradeops_probe_duration_seconds{%(selector)s, %(targets)s} / on (job, instance, kind, target) tradeops_probe_timeout_seconds{%(selector)s, %(targets)s}' % s, '{{target}} ({{kind}})')],
            w: 8,
          }),

          g.row('Production session (passive reader, kind fix_store)'),
          g.stat({
            title: 'Logged on',
            description: "Whether the engine's event log says the session is logged on. Red (logged out) or amber (unknown: neither a logon nor a logout in the log read) inside the schedule and calendar: FixSessionNotLoggedOn pages after 1 minute (an unknown state only once nothing was received for %d s). When red, see the session events below (logon failures, disconnects, heartbeat timeouts) and the engine's event log." % t.fixUnknownStateSilenceSeconds,
            unit: 'none',
            thresholds: g.thresholds([[null, 'orange'], [0, 'red'], [1, 'green']]),
            mappings: [{
              type: 'value',
              options: {
                '-1': { text: 'unknown', color: 'orange', index: 0 },
                '0': { text: 'logged out', color: 'red', index: 1 },
                '1': { text: 'logged on', color: 'green', index: 2 },
              },
            }],
            targets: [g.target(|||
              tradeops_fix_session_logged_on{%(selector)s, %(vars)s}
              or on (session)
              tradeops_fix_session_in_schedule{%(selector)s, %(vars)s} * 0 - 1
            ||| % s, '{{session}}', instant=true)],
            w: 8,
          }),
          g.stat({
            title: 'Heartbeat',
            description: 'Whether the counterparty is heard from: overdue once a logged-on session has received nothing for longer than its HeartBtInt plus the grace. Red inside the schedule and calendar: FixSessionHeartbeatOverdue pages after 1 minute; the counterparty, the network or the engine is stuck (see "Last message age"). Empty while the session is logged out.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'green'], [1, 'red']]),
            mappings: g.boolMappings('on time', 'overdue', 'green', 'red'),
            targets: [g.target('tradeops_fix_session_heartbeat_overdue{%(selector)s, %(vars)s}' % s, '{{session}}', instant=true)],
            w: 8,
          }),
          g.stat({
            title: 'Store integrity',
            description: "Whether the store's sequence numbers only went forward (or were reset with a new store creation time). Red: a sequence number went backwards without a reset (a restored or copied store): FixSessionStoreIntegrityLost pages, resends will go wrong; stop and fix the store before the next logon. It turns green again when the store is reset.",
            unit: 'none',
            thresholds: g.thresholds([[null, 'red'], [1, 'green']]),
            mappings: g.boolMappings('LOST', 'ok'),
            targets: [g.target('tradeops_fix_session_store_integrity_ok{%(selector)s, %(vars)s}' % s, '{{session}}', instant=true)],
            w: 8,
          }),
          g.timeseries({
            title: 'Last message age',
            description: 'Seconds since the engine last received (and sent) a message, with the HeartBtInt of the latest Logon dashed. A healthy session saw-tooths below its HeartBtInt; a received line ramping past it is an overdue heartbeat (FixSessionHeartbeatOverdue). A sent line ramping means the engine itself stopped.',
            unit: 's',
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [
              g.target('time() - tradeops_fix_session_last_inbound_timestamp_seconds{%(selector)s, %(vars)s}' % s, '{{session}} received'),
              g.target('time() - tradeops_fix_session_last_outbound_timestamp_seconds{%(selector)s, %(vars)s}' % s, '{{session}} sent'),
              g.target('tradeops_fix_session_heartbeat_interval_seconds{%(selector)s, %(vars)s}' % s, 'HeartBtInt {{session}}'),
            ],
            overrides: [dashed('HeartBtInt .*')],
          }),
          g.timeseries({
            title: 'Sequence numbers',
            description: 'Next outgoing and next expected incoming MsgSeqNum over time. Both climb while messages flow; a drop to 1 is a store reset (start of day, ResetSeqNumFlag); any other drop is a regression (red "Store integrity"). A flat line while the session is logged on means nothing is exchanged.',
            unit: 'none',
            decimals: 0,
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [
              g.target('tradeops_fix_session_next_sender_seqnum{%(selector)s, %(vars)s}' % s, '{{session}} out'),
              g.target('tradeops_fix_session_next_target_seqnum{%(selector)s, %(vars)s}' % s, '{{session}} in'),
            ],
          }),
          g.timeseries({
            title: 'Session events',
            description: "Events per interval from the engine's logs: logons by result, disconnects, heartbeat timeouts, SequenceResets by mode (a reset outside a logon: FixSessionSequenceResetNoLogon warns) and sequence-number regressions (FixSessionSeqnumRegression warns, FixSessionStoreIntegrityLost pages). Failed logons and disconnects explain a red \"Logged on\".",
            unit: 'short',
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [
              g.target('sum by (session, result) (increase(tradeops_fix_session_logons_total{%(selector)s, %(vars)s}[$__rate_interval]))' % s, '{{session}} logon {{result}}'),
              g.target('sum by (session) (increase(tradeops_fix_session_disconnects_total{%(selector)s, %(vars)s}[$__rate_interval]))' % s, '{{session}} disconnect'),
              g.target('sum by (session) (increase(tradeops_fix_session_heartbeat_timeouts_total{%(selector)s, %(vars)s}[$__rate_interval]))' % s, '{{session}} heartbeat timeout'),
              g.target('sum by (session, mode) (increase(tradeops_fix_session_sequence_resets_total{%(selector)s, %(vars)s}[$__rate_interval]))' % s, '{{session}} sequence reset {{mode}}'),
              g.target('sum by (session) (increase(tradeops_fix_session_seqnum_regressions_total{%(selector)s, %(vars)s}[$__rate_interval]))' % s, '{{session}} seqnum regression'),
            ],
            w: 8,
          }),
          g.timeseries({
            title: 'ResendRequests per 5 min',
            description: 'ResendRequests (35=2) per 5 minutes, both directions together (solid, what the alert counts) and by direction (dashed: inbound means the counterparty missed our messages, outbound that we missed theirs). Amber above %d: FixSessionResendRequests warns; messages are being lost or sequence numbers disagree (see "Sequence numbers").' % t.fixResendRequestsPer5m,
            unit: 'short',
            thresholds: g.thresholds([[null, 'green'], [t.fixResendRequestsPer5m + 0.5, 'orange']]),
            targets: [
              g.target('sum by (session) (rate(tradeops_fix_session_resend_requests_total{%(selector)s, %(vars)s}[$__rate_interval])) * 300' % s, '{{session}}'),
              g.target('sum by (session, direction) (rate(tradeops_fix_session_resend_requests_total{%(selector)s, %(vars)s}[$__rate_interval])) * 300' % s, '{{session}} {{direction}}'),
            ],
            overrides: [dashed('.* (inbound|outbound)')],
            w: 8,
          }),
          g.timeseries({
            title: 'Rejects per 5 min',
            description: 'Session-level Rejects (35=3) and BusinessMessageRejects (35=j) per 5 minutes, both directions together. Amber above %d: FixSessionRejects warns; session-level rejects are malformed messages, business-level ones refused requests. Read the rejected messages in the engine log.' % t.fixRejectsPer5m,
            unit: 'short',
            thresholds: g.thresholds([[null, 'green'], [t.fixRejectsPer5m + 0.5, 'orange']]),
            targets: [g.target('sum by (session, level) (rate(tradeops_fix_session_rejects_total{%(selector)s, %(vars)s}[$__rate_interval])) * 300' % s, '{{session}} {{level}}')],
            w: 8,
          }),

          g.row('Orders'),
          g.stat({
            title: 'Order ack p95',
            description: 'p95 of order entry (D/G/F) to its first answer (ExecutionReport or cancel reject) over 5 minutes, per session (the recording rule tradeops:fix_order_ack_latency_seconds:p95; empty without orders). Red at the SLA limit of %g s (SlaOrderLatencyHigh pages team execution, judged from %d orders per 5 minutes), amber from 80 %% of it. When red, throttle order entry on the session and escalate to the execution trader.' % [sla.orderLatencyP95Seconds, sla.orderLatencyMinOrders],
            unit: 's',
            decimals: 3,
            thresholds: g.rag(0.8 * sla.orderLatencyP95Seconds, sla.orderLatencyP95Seconds),
            targets: [g.target('tradeops:fix_order_ack_latency_seconds:p95{%(vars)s}' % s, '{{session}}', instant=true)],
            w: 8,
          }),
          g.stat({
            title: 'Unacknowledged orders per 5 min',
            description: "Order entries that got no ExecutionReport or cancel reject within the reader's ack_timeout (or were dropped as the oldest pending), per 5 minutes. Red above %d inside the schedule and calendar: FixSessionOrdersUnacknowledged pages; the state of those orders at the venue is unknown: ask the venue, check the heartbeat and logon state above." % t.fixOrdersUnacknowledgedPer5m,
            unit: 'short',
            decimals: 1,
            thresholds: g.thresholds([[null, 'green'], [t.fixOrdersUnacknowledgedPer5m + 0.5, 'red']]),
            targets: [g.target('sum by (session) (rate(tradeops_fix_session_orders_unacknowledged_total{%(selector)s, %(vars)s}[$__rate_interval])) * 300' % s, '{{session}}', instant=true)],
            w: 8,
          }),
          g.stat({
            title: 'Orders pending',
            description: 'Order entries read from the log and still waiting for their answer (at most the ack_timeout). Informational: a count that keeps growing while acknowledgements stop means the venue does not answer; they become unacknowledged after the ack_timeout.',
            unit: 'none',
            decimals: 0,
            thresholds: g.thresholds([[null, 'text']]),
            targets: [g.target('tradeops_fix_session_orders_pending{%(selector)s, %(vars)s}' % s, '{{session}}', instant=true)],
            w: 8,
          }),
          g.timeseries({
            title: 'Order ack latency',
            description: 'Order entry to acknowledgement latency per session: the p95 over 5 minutes that the SLA judges (solid) and the p50 and p99 over the panel interval. Red line at the %g s SLA (SlaOrderLatencyHigh), amber from 80 %% of it. A p99 far above the p95 is a few slow orders; all quantiles rising is the venue or the network.' % sla.orderLatencyP95Seconds,
            unit: 's',
            thresholds: g.rag(0.8 * sla.orderLatencyP95Seconds, sla.orderLatencyP95Seconds),
            targets: [
              g.target('tradeops:fix_order_ack_latency_seconds:p95{%(vars)s}' % s, '{{session}} p95 (5m)'),
              g.target('histogram_quantile(0.5, sum by (session, le) (rate(tradeops_fix_session_order_ack_latency_seconds_bucket{%(selector)s, %(vars)s}[$__rate_interval])))' % s, '{{session}} p50'),
              g.target('histogram_quantile(0.99, sum by (session, le) (rate(tradeops_fix_session_order_ack_latency_seconds_bucket{%(selector)s, %(vars)s}[$__rate_interval])))' % s, '{{session}} p99'),
            ],
            overrides: [dashed('.* p(50|99)')],
          }),
          g.timeseries({
            title: 'Orders per 5 min',
            description: 'Order entries acknowledged and unacknowledged per 5 minutes per session. The SLA p95 is judged only from %d acknowledged orders per 5 minutes; any unacknowledged line above zero in session is FixSessionOrdersUnacknowledged. Acknowledgements dropping to zero while orders are pending: the venue stopped answering.' % sla.orderLatencyMinOrders,
            unit: 'short',
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [
              g.target('sum by (session) (rate(tradeops_fix_session_order_ack_latency_seconds_count{%(selector)s, %(vars)s}[$__rate_interval])) * 300' % s, '{{session}} acknowledged'),
              g.target('sum by (session) (rate(tradeops_fix_session_orders_unacknowledged_total{%(selector)s, %(vars)s}[$__rate_interval])) * 300' % s, '{{session}} unacknowledged'),
            ],
          }),

          g.row('Reader'),
          g.timeseries({
            title: 'Log backlog',
            description: "Bytes of each session's message and event logs not read yet (the reader caps each cycle at max_read_bytes). Amber above %d MiB: FixSessionLogBacklog warns after 10 minutes; the session's FIX series lag behind the engine. Raise max_read_bytes or the probe timeout, or check the disk." % (t.fixLogBacklogBytes / 1048576),
            unit: 'bytes',
            thresholds: g.thresholds([[null, 'green'], [t.fixLogBacklogBytes, 'orange']]),
            targets: [g.target('tradeops_fix_session_log_backlog_bytes{%(selector)s, %(vars)s}' % s, '{{session}} {{log}}')],
          }),
          g.table({
            title: 'Session identity',
            description: 'BeginString and CompIDs of each session (monitoring session and production engine). Check here that the monitoring session uses its own SenderCompID, never a production one; a logon_rejected failure often means these do not match what the venue expects.',
            thresholds: g.thresholds([[null, 'text']]),
            targets: [g.target(|||
              label_replace(tradeops_fix_probe_info{%(selector)s, %(vars)s}, "kind", "fix", "", "")
              or
              label_replace(tradeops_fix_session_info{%(selector)s, %(vars)s}, "kind", "fix_store", "", "")
            ||| % s, '', instant=true)],
            transformations: [{ id: 'organize', options: { excludeByName: { Time: true, Value: true, __name__: true, job: true, instance: true } } }],
            w: 12,
          }),
        ],
      }),
  },
}
