// FIX sessions from both sides: the active monitoring session (kind `fix`:
// can a client log on to the venue right now?) and the passive reader of a
// QuickFIX engine's files (kind `fix_store`: what is the production session
// doing?). Every FIX data series carries `session` (the target name).
//
// - "Failing" alerts (monitoring session failing, store integrity) page at any
//   hour, but the monitoring session only inside its own schedule.
// - "Should be flowing" alerts (logged on, heartbeats, test-request round trips,
//   unacknowledged orders) also need the session's schedule and the target's
//   trading calendar open past its warm-up.
// - A failed monitoring session keeps its series (success 0, the reason) while
//   `tradeops_up{kind="fix"}` is 0: FixMonitoringSessionFailing reports it;
//   FixMonitoringNotReporting only covers a target down WITHOUT those series.
//   A `fix_store` target down is ProbeTargetDown's (exporter area).
// - A fix_store target's counters restart with the backfill read when its
//   probe state restarts (exporter restart, or a reload that changed it), so
//   the counter alerts skip the first window after that.
local a = import '../../bundle/lib/alerts.libsonnet';

{
  _config+:: {
    thresholds+: {
      // With no logon or logout in the event log read (an exporter restart after
      // the logon was rotated away), inbound traffic this recent still counts as
      // logged on; older or none counts as not logged on.
      fixUnknownStateSilenceSeconds: 120,
      // Order entries unanswered within the reader's ack_timeout, per 5 minutes,
      // above which FixSessionOrdersUnacknowledged fires.
      fixOrdersUnacknowledgedPer5m: 0,
    },
  },

  rules+:: {
    local cfg = $._config,
    local t = cfg.thresholds,
    local alert(o) = a.alert(cfg, o { area: 'fix', dashboard: 'fix', vars: { session: 'session' } }),
    local w(d) = a.window(cfg, d),
    local c = cfg {
      w5m: w('5m'),
      w15m: w('15m'),
      // the target's trading calendar in session past its warm-up, by session
      storeGate: 'label_replace(%s, "session", "$1", "target", "(.*)")' % a.targetInSession('fix_store'),
      probeGate: 'label_replace(%s, "session", "$1", "target", "(.*)")' % a.targetInSession('fix'),
      // the target's trading calendar open (no warm-up): a venue shut for a holiday
      // inside the session's weekly schedule does not page
      probeOpen: 'label_replace(tradeops:target_calendar_open{kind="fix"} == 1, "session", "$1", "target", "(.*)")',
      // the fix_store target's last run succeeded, by session
      storeUp: 'label_replace(tradeops_up{%(selector)s, kind="fix_store"} == 1, "session", "$1", "target", "(.*)")' % cfg,
      // the target's probe state restarted within the window (an exporter restart,
      // or a reload that changed the target): its counters jumped by the backfill
      restarted5m: 'label_replace(resets(tradeops_probe_runs_total{%(selector)s, kind="fix_store"}[%(w)s]) > 0, "session", "$1", "target", "(.*)")' % (cfg { w: w('5m') }),
      restarted15m: 'label_replace(resets(tradeops_probe_runs_total{%(selector)s, kind="fix_store"}[%(w)s]) > 0, "session", "$1", "target", "(.*)")' % (cfg { w: w('15m') }),
      rtt: a.num(t.fixTestRequestRoundtripSeconds),
      resends: a.num(t.fixResendRequestsPer5m),
      rejects: a.num(t.fixRejectsPer5m),
      unacked: a.num(t.fixOrdersUnacknowledgedPer5m),
      backlog: a.num(t.fixLogBacklogBytes),
      silence: a.num(t.fixUnknownStateSilenceSeconds),
    },

    fix: {
      groups: [
        a.group('tradeops-fix-probe', [
          alert({
            name: 'FixMonitoringSessionFailing',
            severity: 'critical',
            expr: |||
              tradeops_fix_probe_success{%(selector)s} == 0
              and on (job, instance, session) tradeops_fix_probe_in_schedule{%(selector)s} == 1
              and on (session) %(probeOpen)s
            ||| % c,
            'for': '1m',
            summary: 'The FIX monitoring session cannot log on to its venue.',
            description: 'Monitoring session {{ $labels.session }} has failed every run for 1 minute inside its schedule; last reason: {{ with printf `tradeops_fix_probe_failure{%(selector)s, instance=%%q, session=%%q} == 1` $labels.instance $labels.session | query }}{{ range . }}{{ .Labels.reason }}{{ end }}{{ else }}unknown{{ end }}.' % c,
          }),
          alert({
            name: 'FixMonitoringNotReporting',
            severity: 'warning',
            // A failed session keeps its series and is FixMonitoringSessionFailing's;
            // this is a run that fails before it can report one (bad TLS files, a bug).
            expr: |||
              label_replace(tradeops_up{%(selector)s, kind="fix"}, "session", "$1", "target", "(.*)") == 0
              unless on (job, instance, session) tradeops_fix_probe_success{%(selector)s}
            ||| % c,
            'for': '5m',
            summary: 'A FIX monitoring target fails without running its session.',
            description: 'The fix target {{ $labels.session }} has failed every run for 5 minutes without reporting a monitoring session (tradeops_up {{ $value }}, no tradeops_fix_probe_* series): the venue is not watched. The exporter log names the error.',
          }),
          alert({
            name: 'FixMonitoringTestRequestSlow',
            severity: 'warning',
            expr: |||
              tradeops_fix_probe_test_request_roundtrip_seconds{%(selector)s} > %(rtt)s
              and on (job, instance, session) tradeops_fix_probe_in_schedule{%(selector)s} == 1
              and on (session) %(probeGate)s
            ||| % c,
            'for': '5m',
            summary: "The venue answers the monitoring session's TestRequest slowly.",
            description: 'Monitoring session {{ $labels.session }}: the TestRequest/Heartbeat round trip took {{ $value | humanizeDuration }}, over %(rtt)ss, for 5 minutes in session.' % c,
          }),
        ]),
        a.group('tradeops-fix-session', [
          alert({
            name: 'FixSessionNotLoggedOn',
            severity: 'critical',
            // 0: the event log says logged out; -1: it shows neither logon nor
            // logout and nothing was received recently.
            expr: |||
              (
                tradeops_fix_session_logged_on{%(selector)s} == 0
                or
                (
                  tradeops_fix_session_in_schedule{%(selector)s} * 0 - 1
                  unless on (job, instance, session) tradeops_fix_session_logged_on{%(selector)s}
                  unless on (job, instance, session)
                    (time() - tradeops_fix_session_last_inbound_timestamp_seconds{%(selector)s} < %(silence)s)
                )
              )
              and on (job, instance, session) tradeops_fix_session_in_schedule{%(selector)s} == 1
              and on (session) %(storeGate)s
            ||| % c,
            'for': '1m',
            summary: 'A production FIX session is not logged on during trading hours.',
            description: 'FIX session {{ $labels.session }} is {{ if lt $value 0.0 }}in no known state (no logon or logout in its event log read) and received nothing for %(silence)ss{{ else }}logged out (logged_on {{ $value }}){{ end }} inside its schedule and trading calendar, for 1 minute.' % c,
          }),
          alert({
            name: 'FixSessionHeartbeatOverdue',
            severity: 'critical',
            expr: |||
              (time() - tradeops_fix_session_last_inbound_timestamp_seconds{%(selector)s})
              and on (job, instance, session) tradeops_fix_session_heartbeat_overdue{%(selector)s} == 1
              and on (job, instance, session) tradeops_fix_session_in_schedule{%(selector)s} == 1
              and on (session) %(storeGate)s
            ||| % c,
            'for': '1m',
            summary: 'A logged-on FIX session receives nothing from its counterparty.',
            description: 'FIX session {{ $labels.session }} is logged on but has received nothing for {{ $value | humanizeDuration }}, past its HeartBtInt plus grace: the counterparty, the network or the engine is stuck.',
          }),
          alert({
            name: 'FixSessionTestRequestSlow',
            severity: 'warning',
            // The gauge keeps the last round trip: judge it only while the engine
            // sent TestRequests in the window.
            expr: |||
              tradeops_fix_session_test_request_roundtrip_seconds{%(selector)s} > %(rtt)s
              and on (job, instance, session)
                sum by (job, instance, session) (increase(tradeops_fix_session_messages_total{%(selector)s, direction="outbound", msg_type="test_request"}[%(w15m)s])) > 0
              and on (job, instance, session) tradeops_fix_session_in_schedule{%(selector)s} == 1
              and on (session) %(storeGate)s
              unless on (job, instance, session) %(restarted15m)s
            ||| % c,
            'for': '2m',
            summary: "The counterparty answers the engine's TestRequests slowly.",
            description: "FIX session {{ $labels.session }}: the engine's last TestRequest was answered in {{ $value | humanizeDuration }}, over %(rtt)ss." % c,
          }),
          alert({
            name: 'FixSessionResendRequests',
            severity: 'warning',
            expr: |||
              round(sum by (job, instance, session) (increase(tradeops_fix_session_resend_requests_total{%(selector)s}[%(w5m)s]))) > %(resends)s
              and on (job, instance, session) %(storeUp)s
              unless on (job, instance, session) %(restarted5m)s
            ||| % c,
            'for': '1m',
            summary: 'A FIX session asks for or is asked for many resends.',
            description: 'FIX session {{ $labels.session }}: {{ $value | printf "%%.0f" }} ResendRequests in 5 minutes (both directions), over %(resends)s: messages are being lost or sequence numbers disagree.' % c,
          }),
          alert({
            name: 'FixSessionRejects',
            severity: 'warning',
            expr: |||
              round(sum by (job, instance, session, level) (increase(tradeops_fix_session_rejects_total{%(selector)s}[%(w5m)s]))) > %(rejects)s
              and on (job, instance, session) %(storeUp)s
              unless on (job, instance, session) %(restarted5m)s
            ||| % c,
            'for': '1m',
            summary: 'A FIX session rejects or has rejected many messages.',
            description: 'FIX session {{ $labels.session }}: {{ $value | printf "%%.0f" }} {{ $labels.level }}-level rejects in 5 minutes (both directions), over %(rejects)s.' % c,
          }),
          alert({
            name: 'FixSessionSequenceResetNoLogon',
            severity: 'warning',
            expr: |||
              sum by (job, instance, session) (increase(tradeops_fix_session_sequence_resets_total{%(selector)s, mode="reset"}[%(w5m)s])) > 0
              unless on (job, instance, session)
                sum by (job, instance, session) (increase(tradeops_fix_session_logons_total{%(selector)s}[%(w5m)s])) > 0
              and on (job, instance, session) %(storeUp)s
              unless on (job, instance, session) %(restarted5m)s
            ||| % c,
            'for': '1m',
            summary: "A FIX session's sequence numbers were reset outside a logon.",
            description: 'FIX session {{ $labels.session }}: {{ $value | printf "%.0f" }} SequenceReset-Reset (35=4 without GapFill) in 5 minutes with no logon in that time: sequence numbers were forced, messages may be skipped.',
          }),
          alert({
            name: 'FixSessionSeqnumRegression',
            severity: 'warning',
            // While the integrity latch is 0, FixSessionStoreIntegrityLost (critical)
            // speaks for it; this reports regressions the latch no longer shows
            // (the store was reset since).
            expr: |||
              increase(tradeops_fix_session_seqnum_regressions_total{%(selector)s}[%(w15m)s]) > 0
              and on (job, instance, session) tradeops_fix_session_store_integrity_ok{%(selector)s} == 1
            ||| % c,
            'for': '1m',
            summary: "A FIX session's stored sequence number went backwards.",
            description: 'FIX session {{ $labels.session }}: a stored sequence number went backwards {{ $value | printf "%.0f" }} times in 15 minutes without a store reset; the store has been reset since. Check the resends around it.',
          }),
          alert({
            name: 'FixSessionStoreIntegrityLost',
            severity: 'critical',
            expr: |||
              tradeops_fix_session_seqnum_regressions_total{%(selector)s}
              and on (job, instance, session) tradeops_fix_session_store_integrity_ok{%(selector)s} == 0
            ||| % c,
            'for': '1m',
            summary: "A FIX session store's sequence numbers went backwards without a reset.",
            description: 'FIX session {{ $labels.session }}: a sequence number in its store went backwards without a store reset ({{ $value | printf "%.0f" }} regressions seen by the exporter): a restored or copied store, resends will go wrong.',
          }),
          alert({
            name: 'FixSessionOrdersUnacknowledged',
            severity: 'critical',
            expr: |||
              round(increase(tradeops_fix_session_orders_unacknowledged_total{%(selector)s}[%(w5m)s])) > %(unacked)s
              and on (job, instance, session) tradeops_fix_session_in_schedule{%(selector)s} == 1
              and on (session) %(storeGate)s
              unless on (job, instance, session) %(restarted5m)s
            ||| % c,
            'for': '30s',
            summary: 'Orders on a FIX session get no acknowledgement.',
            description: 'FIX session {{ $labels.session }}: {{ $value | printf "%%.0f" }} order entries (D/G/F) got no ExecutionReport or cancel reject within the ack timeout in 5 minutes: their state at the venue is unknown.' % c,
          }),
          alert({
            name: 'FixSessionLogBacklog',
            severity: 'warning',
            expr: 'tradeops_fix_session_log_backlog_bytes{%(selector)s} > %(backlog)s' % c,
            'for': '10m',
            summary: "The exporter falls behind reading a FIX engine's log.",
            description: "FIX session {{ $labels.session }}: {{ $value | humanize1024 }}B of its {{ $labels.log }} log not read yet, over %(backlogH)s, for 10 minutes: the session's FIX series lag behind the engine." % (c { backlogH: '%dMiB' % (t.fixLogBacklogBytes / 1048576) }),
          }),
        ]),
      ],
    },
  },
}
