// TimescaleDB / PostgreSQL: the server is reachable, market data keeps landing
// in the watched tables while their calendar is in session, the background jobs
// run, the standbys keep up, and nothing is about to stop writes (connections,
// long transactions, transaction-ID wraparound).
local a = import '../../bundle/lib/alerts.libsonnet';

{
  _config+:: {
    thresholds+: {
      // Transaction-ID age that pages: PostgreSQL refuses writes about 2^31
      // (2.1e9) transactions after the oldest unfrozen XID.
      timescaleXidAgeCritical: 1500000000,
    },
  },

  rules+:: {
    local cfg = $._config,
    local t = cfg.thresholds,
    local alert(o) = a.alert(cfg, o { area: 'timescale', dashboard: 'timescale' }),
    local w(d) = a.window(cfg, d),
    // Tags added to the config for the %-templated expressions.
    local c = cfg {
      // Alerts whose subject is replicated from the primary (jobs, XID age) read
      // the same on every standby: only the primary reports them.
      primary: 'on (job, instance, target) tradeops_timescale_in_recovery{%(selector)s} == 0' % cfg,
    },
    local tableVars = { target: 'target', table: 'table' },
    local jobVars = { target: 'target' },

    timescale: {
      groups: [
        a.group('tradeops-timescale', [
          alert({
            name: 'TimescaleDown',
            severity: 'critical',
            expr: 'tradeops_up{%(selector)s, kind="timescale"} == 0' % cfg,
            'for': '1m',
            summary: 'A TimescaleDB/PostgreSQL server cannot be probed.',
            description: 'Every probe run of timescale target {{ $labels.target }} fails (server down, refusing connections, login failing or hung): ingest and the readers of that database are at risk, and its data alerts are silent while it is down.',
          }),
          alert({
            name: 'TimescaleTableStale',
            severity: 'critical',
            // The newest row is older than the table's SLA while its calendar is
            // in session past the warm-up, and the SLA has also elapsed since the
            // warm-up ended (yesterday's last tick does not count against today).
            expr: |||
              (
                time() - tradeops_timescale_table_newest_row_timestamp_seconds{%(selector)s}
                > on (job, instance, target, table) group_left (calendar)
                tradeops_timescale_table_freshness_sla_seconds{%(selector)s}
              )
              and on (job, instance, target, table)
              (
                tradeops_timescale_table_freshness_sla_seconds{%(selector)s}
                < on (job, instance, calendar) group_left ()
                (
                  time()
                  - tradeops_calendar_session_open_timestamp_seconds{%(selector)s}
                  - tradeops_calendar_warmup_seconds{%(selector)s}
                )
              )
              and on (calendar) %(inSession)s
            ||| % (cfg { inSession: a.inSession }),
            'for': '1m',
            summary: 'Market data stopped landing in a watched table during the session.',
            description: 'Table {{ $labels.table }} on {{ $labels.target }}: the newest row is {{ $value | humanizeDuration }} old, over its freshness SLA, while calendar {{ $labels.calendar }} is in session: the ingest pipeline into it has stopped.',
            vars: tableVars,
          }),
          alert({
            name: 'TimescaleTableEmpty',
            severity: 'warning',
            expr: 'tradeops_timescale_table_has_rows{%(selector)s} == 0' % cfg,
            'for': '5m',
            summary: 'A watched table has no rows.',
            description: 'Table {{ $labels.table }} on {{ $labels.target }} has no row with a time value: it was never written, truncated, or emptied by retention; its freshness cannot be judged.',
            vars: tableVars,
          }),
          alert({
            name: 'TimescaleTableQueryFailing',
            severity: 'warning',
            expr: 'tradeops_timescale_table_query_success{%(selector)s} == 0' % cfg,
            'for': '5m',
            summary: 'The newest-row query of a watched table fails.',
            description: 'The newest-row lookup on table {{ $labels.table }} of {{ $labels.target }} keeps failing (table or column missing, no privilege, lock or statement timeout): its ingest freshness is not watched.',
            vars: tableVars,
          }),
          alert({
            name: 'TimescaleConnectionsNearLimit',
            severity: 'warning',
            expr: |||
              sum by (job, instance, target) (tradeops_timescale_connections{%(selector)s})
              / on (job, instance, target)
              (tradeops_timescale_max_connections{%(selector)s} - tradeops_timescale_reserved_connections{%(selector)s})
              > %(ratio)s
            ||| % (cfg { ratio: a.num(t.timescaleConnectionsRatio) }),
            'for': '5m',
            summary: 'PostgreSQL client connections are close to max_connections.',
            description: '{{ $labels.target }} uses {{ $value | humanizePercentage }} of the connections ordinary roles may open (max_connections minus the superuser reserve): new sessions of ingest and trading services will soon be refused.',
          }),
          alert({
            name: 'TimescaleLongTransaction',
            severity: 'warning',
            // When the oldest transaction is the idle-in-transaction one, its own
            // alert says more.
            expr: |||
              tradeops_timescale_oldest_transaction_seconds{%(selector)s} > %(long)s
              unless on (job, instance, target)
              (
                tradeops_timescale_oldest_idle_in_transaction_seconds{%(selector)s}
                >= on (job, instance, target)
                tradeops_timescale_oldest_transaction_seconds{%(selector)s}
              )
            ||| % (cfg { long: a.num(t.timescaleLongTransactionSeconds) }),
            'for': '1m',
            summary: 'A PostgreSQL transaction has been open for a long time.',
            description: 'The oldest open transaction on {{ $labels.target }} started {{ $value | humanizeDuration }} ago: it holds back vacuum (bloat on the hypertables) and may hold locks ingest waits on.',
          }),
          alert({
            name: 'TimescaleIdleInTransaction',
            severity: 'warning',
            expr: 'tradeops_timescale_oldest_idle_in_transaction_seconds{%(selector)s} > %(idle)s' % (cfg { idle: a.num(t.timescaleIdleInTransactionSeconds) }),
            'for': '1m',
            summary: 'A PostgreSQL session sits idle inside an open transaction.',
            description: 'On {{ $labels.target }} a session has been idle in a transaction opened {{ $value | humanizeDuration }} ago: an application opened it and went away; it holds its locks and blocks vacuum.',
          }),
          alert({
            name: 'TimescaleXidAgeHigh',
            severity: 'warning',
            expr: 'tradeops_timescale_database_xid_age{%(selector)s} > %(xid)s and %(primary)s' % (c { xid: a.num(t.timescaleXidAge) }),
            'for': '15m',
            summary: 'Transaction-ID age is high: autovacuum is not freezing.',
            description: 'Database of {{ $labels.target }}: {{ $value | humanize }} transactions since its oldest unfrozen XID; PostgreSQL stops accepting writes near 2.1G (2^31). Find what blocks freezing before it pages.',
          }),
          alert({
            name: 'TimescaleXidWraparoundNear',
            severity: 'critical',
            expr: 'tradeops_timescale_database_xid_age{%(selector)s} > %(xid)s and %(primary)s' % (c { xid: a.num(t.timescaleXidAgeCritical) }),
            'for': '5m',
            summary: 'Transaction-ID wraparound is close: PostgreSQL will stop accepting writes.',
            description: 'Database of {{ $labels.target }}: {{ $value | humanize }} transactions since its oldest unfrozen XID; at about 2.1G (2^31) PostgreSQL refuses every write, ingest included, until a manual VACUUM.',
          }),
          alert({
            name: 'TimescaleDeadlocks',
            severity: 'warning',
            expr: 'increase(tradeops_timescale_deadlocks_total{%(selector)s}[%(w)s]) > 0' % (cfg { w: w('15m') }),
            'for': '1m',
            summary: 'PostgreSQL detected deadlocks.',
            description: 'Database of {{ $labels.target }}: {{ $value | printf "%.0f" }} deadlock(s) in 15 minutes. PostgreSQL cancelled one transaction of each; its writer must retry or that write is lost.',
          }),
        ]),
        a.group('tradeops-timescale-replication', [
          alert({
            name: 'TimescaleStandbyReplayLag',
            severity: 'warning',
            // Seconds alone grow on an idle primary (time since the last commit):
            // lag counts only while received WAL waits to be replayed.
            expr: |||
              tradeops_timescale_standby_replay_lag_seconds{%(selector)s} > %(lag)s
              and on (job, instance, target)
              tradeops_timescale_standby_replay_lag_bytes{%(selector)s} > 0
            ||| % (cfg { lag: a.num(t.timescaleStandbyLagSeconds) }),
            'for': '5m',
            summary: 'A standby replays WAL far behind its primary.',
            description: 'Standby {{ $labels.target }} has received WAL it has not replayed and is {{ $value | humanizeDuration }} behind: queries on it read stale data and a failover to it would wait for the replay.',
          }),
          alert({
            name: 'TimescaleReplicaReplayLag',
            severity: 'warning',
            expr: 'tradeops_timescale_replica_max_replay_lag_seconds{%(selector)s} > %(lag)s' % (cfg { lag: a.num(t.timescaleReplicaLagSeconds) }),
            'for': '5m',
            summary: 'A standby of the primary lags in replay.',
            description: 'The furthest-behind standby of primary {{ $labels.target }} replays {{ $value | humanizeDuration }} behind: queries on it read stale data and a failover would lose or wait for that much.',
          }),
          alert({
            name: 'TimescaleReplicasNotStreaming',
            severity: 'warning',
            expr: |||
              tradeops_timescale_replicas_connected{%(selector)s}
              - on (job, instance, target) tradeops_timescale_replicas_streaming{%(selector)s}
              > 0
            ||| % cfg,
            'for': '15m',
            summary: 'WAL receivers attached to the primary are not streaming.',
            description: 'Primary {{ $labels.target }}: {{ $value | printf "%.0f" }} attached WAL receiver(s) not streaming (stuck in startup or catch-up, or a base backup): that standby is not a usable copy.',
          }),
          alert({
            name: 'TimescaleReplicaStreamingLost',
            severity: 'warning',
            // No standby streams now although one did in the last day (a primary
            // that never had one stays quiet; this resolves a day after the loss).
            expr: |||
              tradeops_timescale_replicas_streaming{%(selector)s} == 0
              and on (job, instance, target)
              max_over_time(tradeops_timescale_replicas_streaming{%(selector)s}[%(w)s]) > 0
            ||| % (cfg { w: w('1d') }),
            'for': '5m',
            summary: 'The primary has lost every streaming standby.',
            description: 'No standby streams from primary {{ $labels.target }} any more, although one did in the last day: there is no hot copy to fail over to.',
          }),
          alert({
            name: 'TimescaleStandbyNotStreaming',
            severity: 'warning',
            expr: 'tradeops_timescale_standby_wal_receiver_streaming{%(selector)s} == 0' % cfg,
            'for': '5m',
            summary: 'A standby does not stream WAL from its primary.',
            description: 'The WAL receiver of standby {{ $labels.target }} is not streaming from the primary: it falls further behind (or replays only from the WAL archive).',
          }),
          alert({
            name: 'TimescaleInactiveSlotRetainingWal',
            severity: 'warning',
            expr: |||
              tradeops_timescale_replication_slot_max_retained_bytes{%(selector)s} > %(bytes)s
              and on (job, instance, target)
              tradeops_timescale_replication_slots_inactive{%(selector)s} > 0
            ||| % (cfg { bytes: a.num(t.timescaleSlotRetainedBytes) }),
            'for': '15m',
            summary: 'An inactive replication slot retains WAL on the primary.',
            description: 'Primary {{ $labels.target }} has a replication slot with no consumer, and its slots hold back {{ $value | humanize1024 }}B of WAL: pg_wal grows until the disk fills and the primary stops.',
          }),
        ]),
        a.group('tradeops-timescale-jobs', [
          alert({
            name: 'TimescaleJobFailed',
            severity: 'warning',
            expr: 'tradeops_timescale_job_last_run_success{%(selector)s} == 0 and %(primary)s' % c,
            'for': '5m',
            summary: 'A TimescaleDB background job failed its last run.',
            description: 'Job {{ $labels.job_id }} ({{ $labels.proc }}{{ with $labels.hypertable }} on {{ . }}{{ end }}) of {{ $labels.target }} failed its last run: compression, retention or aggregate refresh is not being done.',
            vars: jobVars,
          }),
          alert({
            name: 'TimescaleJobFailingIntermittently',
            severity: 'warning',
            expr: |||
              increase(tradeops_timescale_job_failures_total{%(selector)s}[%(w)s]) > 0
              and %(primary)s
              unless on (job, instance, target, job_id)
              tradeops_timescale_job_last_run_success{%(selector)s} == 0
            ||| % (c { w: w('1h') }),
            'for': '1m',
            summary: 'A TimescaleDB background job fails some of its runs.',
            description: 'Job {{ $labels.job_id }} ({{ $labels.proc }}{{ with $labels.hypertable }} on {{ . }}{{ end }}) of {{ $labels.target }} failed {{ $value | printf "%.0f" }} run(s) in the last hour, although its last run succeeded.',
            vars: jobVars,
          }),
          alert({
            name: 'TimescaleJobOverdue',
            severity: 'warning',
            expr: |||
              time() - tradeops_timescale_job_next_start_timestamp_seconds{%(selector)s} > %(overdue)s
              and on (job, instance, target, job_id) tradeops_timescale_job_paused{%(selector)s} == 0
              and on (job, instance, target, job_id) tradeops_timescale_job_running{%(selector)s} == 0
              and %(primary)s
            ||| % (c { overdue: a.num(t.timescaleJobOverdueSeconds) }),
            'for': '5m',
            summary: 'A TimescaleDB background job has not started when scheduled.',
            description: 'Job {{ $labels.job_id }} ({{ $labels.proc }}{{ with $labels.hypertable }} on {{ . }}{{ end }}) of {{ $labels.target }} was due {{ $value | humanizeDuration }} ago and is neither running nor paused: the job scheduler is stuck or out of background workers.',
            vars: jobVars,
          }),
        ]),
      ],
    },
  },
}
