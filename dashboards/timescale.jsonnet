// TimescaleDB / PostgreSQL: whether each server answers, ingest freshness of the
// watched tables against their SLA, hypertables and compression, background
// jobs, replication (primary and standby side), connections against
// max_connections, long transactions and transaction-ID age.
local g = import 'lib/grafana.libsonnet';

{
  grafanaDashboards+:: {
    timescale:
      local cfg = $._config;
      local t = cfg.thresholds;
      local s = {
        selector: cfg.selector,
        vars: 'target=~"$target"',
        tbl: 'target=~"$target", table=~"$table"',
        // Jobs (and their catalogue) are replicated: only a primary runs them,
        // as in the job alerts.
        primary: 'on (job, instance, target) tradeops_timescale_in_recovery{%s, target=~"$target"} == 0' % cfg.selector,
      };
      local exclude(names) = { id: 'organize', options: { excludeByName: { [n]: true for n in names } } };
      local organize(names, rename) = exclude(names) + { options+: { renameByName: rename } };
      local column(name, props) = { matcher: { id: 'byName', options: name }, properties: props };
      local colored(th) = [
        { id: 'thresholds', value: th },
        { id: 'custom.cellOptions', value: { type: 'color-text' } },
      ];
      local dashed(regex) = {
        matcher: { id: 'byRegexp', options: regex },
        properties: [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }],
      };
      local tableStatus = [{
        type: 'value',
        options: {
          '0': { text: 'OK', color: 'green', index: 0 },
          '1': { text: 'EMPTY', color: 'orange', index: 1 },
          '2': { text: 'QUERY FAILING', color: 'orange', index: 2 },
        },
      }];
      g.dashboard(cfg, 'timescale', {
        description: 'TimescaleDB / PostgreSQL: whether each server answers, whether market data keeps landing in the watched tables within their SLA, hypertables and compression, background jobs, replication, connections and what could stop writes (long transactions, transaction-ID age).',
        tags: ['timescale'],
        variables: [
          g.queryVariable('target', 'Target', 'tradeops_up{%(selector)s, kind="timescale"}' % s, 'target'),
          g.queryVariable('table', 'Table', 'tradeops_timescale_table_freshness_sla_seconds{%(selector)s, target=~"$target"}' % s, 'table'),
        ],
        panels: [
          g.row('Reachability'),
          g.stat({
            title: 'Probe up',
            description: "Whether the exporter's last probe run of each server succeeded. Red: the server is down, refuses connections, the login fails or it hangs; its data series are withdrawn (the panels below go empty for it) and TimescaleDown pages after 1 minute. The reason is in \"Probe errors by reason\".",
            unit: 'none',
            thresholds: g.thresholds([[null, 'red'], [1, 'green']]),
            mappings: g.boolMappings('down', 'up'),
            targets: [g.target('tradeops_up{%(selector)s, kind="timescale", %(vars)s}' % s, '{{target}}', instant=true)],
          }),
          g.stat({
            title: 'Role',
            description: "Whether each server is a primary or a standby (in recovery). A change is a failover: check that ingest writes to the new primary. Job and transaction-ID alerts count only on a primary (a standby shows its primary's replicated state).",
            unit: 'none',
            thresholds: g.thresholds([[null, 'text']]),
            mappings: g.boolMappings('primary', 'standby', 'green', 'blue'),
            targets: [g.target('tradeops_timescale_in_recovery{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
          }),
          g.stat({
            title: 'TimescaleDB extension',
            description: 'Whether the timescaledb extension is installed in the probed database. Amber: plain PostgreSQL, so there are no hypertable or job series and those panels stay empty; expected only for a target that is not a TimescaleDB.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'orange'], [1, 'green']]),
            mappings: g.boolMappings('absent', 'installed', 'orange'),
            targets: [g.target('tradeops_timescale_extension_installed{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
          }),
          g.stat({
            title: 'Query round trip',
            description: 'Round trip of a trivial query on a pooled connection (connecting excluded): the latency every reader and writer pays. Informational; a jump on one server is load on it (see connections and transactions below), on every server the network.',
            unit: 's',
            thresholds: g.thresholds([[null, 'text']]),
            targets: [g.target('tradeops_timescale_query_roundtrip_seconds{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
          }),
          g.timeseries({
            title: 'Probe errors by reason',
            description: 'Failed probe runs per second by server and reason: what TimescaleDown is about. auth: password, pg_hba.conf or a missing privilege on a statistics view; refused: nothing listens, too many connections, starting or stopping; timeout: hung server or statement_timeout; config: the database does not exist or TLS files; protocol: not PostgreSQL, TLS handshake, unsupported version.',
            unit: 'ops',
            thresholds: g.rag(0.0001, 0.01),
            thresholdsStyle: 'off',
            targets: [g.target('sum by (target, reason) (rate(tradeops_probe_errors_total{%(selector)s, kind="timescale", %(vars)s}[$__rate_interval]))' % s, '{{target}}: {{reason}}')],
            w: 24,
            h: 6,
          }),
          g.row('Ingest freshness'),
          g.stat({
            title: 'Newest row age / SLA',
            description: "Age of each watched table's newest row as a share of its freshness SLA (tradeops_timescale_table_freshness_sla_seconds). Amber from 80 %, red from 100 %: while the table's calendar is in session past its warm-up, TimescaleTableStale pages (market data stopped landing). Red on a closed calendar pages nobody. Check the ingest pipeline into the table, then this server's connections and locks.",
            unit: 'percentunit',
            decimals: 0,
            thresholds: g.rag(0.8, 1),
            targets: [g.target(|||
              (time() - tradeops_timescale_table_newest_row_timestamp_seconds{%(selector)s, %(tbl)s})
              / on (job, instance, target, table) group_left (calendar)
              tradeops_timescale_table_freshness_sla_seconds{%(selector)s, %(tbl)s}
            ||| % s, '{{table}} ({{target}})', instant=true)],
            w: 10,
            h: 6,
          }),
          g.stat({
            title: 'Within SLA',
            description: "Whether each table's newest row was younger than its SLA when last probed, whatever the calendar. Red: stale (or empty); it pages only in session (see the calendars). Outside the session this is expected after the close.",
            unit: 'none',
            thresholds: g.thresholds([[null, 'red'], [1, 'green']]),
            mappings: g.boolMappings('stale', 'fresh'),
            targets: [g.target('tradeops_timescale_table_within_sla{%(selector)s, %(tbl)s}' % s, '{{table}} ({{target}})', instant=true)],
            w: 5,
            h: 6,
          }),
          g.stat({
            title: 'Table checks',
            description: "Whether each table's newest-row lookup works. QUERY FAILING: table or column missing, no privilege, lock or statement timeout, or not a time column (TimescaleTableQueryFailing warns): freshness is not watched, fix the table config or grants. EMPTY: no row with a time value (TimescaleTableEmpty warns): never written, truncated or emptied by retention.",
            unit: 'none',
            thresholds: g.rag(1, 2),
            mappings: tableStatus,
            targets: [g.target(|||
              (1 - tradeops_timescale_table_query_success{%(selector)s, %(tbl)s}) * 2 > 0
              or
              (1 - tradeops_timescale_table_has_rows{%(selector)s, %(tbl)s})
            ||| % s, '{{table}} ({{target}})', instant=true)],
            w: 5,
            h: 6,
          }),
          g.stat({
            title: 'Calendars in session',
            description: "Whether the calendar each table's ingest follows is in session (open and past its warm-up). TimescaleTableStale fires only in session, and only once the SLA has also elapsed since the warm-up ended. A calendar closed during trading hours: check the exporter's calendars: config.",
            unit: 'none',
            thresholds: g.thresholds([[null, 'text'], [1, 'green']]),
            mappings: g.boolMappings('closed', 'in session', 'text'),
            targets: [g.target('tradeops:calendar_in_session and on (calendar) tradeops_timescale_table_freshness_sla_seconds{%(selector)s, %(tbl)s}' % s, '{{calendar}}', instant=true)],
            w: 4,
            h: 6,
          }),
          g.timeseries({
            title: 'Newest row age',
            description: "Age of each watched table's newest row, with its SLA dashed. A saw-tooth under the dashed line is healthy ingest; a ramp through it is a stopped pipeline (it pages once above while in session); a ramp that starts at the close is the market closing. A vanishing line: the lookup fails or the table is empty (see Table checks).",
            unit: 's',
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [
              g.target('time() - tradeops_timescale_table_newest_row_timestamp_seconds{%(selector)s, %(tbl)s}' % s, '{{table}} ({{target}})'),
              g.target('tradeops_timescale_table_freshness_sla_seconds{%(selector)s, %(tbl)s}' % s, 'SLA {{table}} ({{target}})'),
            ],
            overrides: [dashed('SLA .*')],
            w: 24,
          }),
          g.row('Hypertables and compression'),
          g.table({
            title: 'Hypertables',
            description: 'Per hypertable: chunks, compressed chunks, whether compression is enabled, and total size. Compressed chunks falling behind the total on a compressed hypertable mean the compression policy is not keeping up: check its job in the table below. Informational; no alert.',
            thresholds: g.thresholds([[null, 'text']]),
            targets: [
              g.target('tradeops_timescale_hypertable_chunks{%(selector)s, %(vars)s}' % s, ''),
              g.target('tradeops_timescale_hypertable_compressed_chunks{%(selector)s, %(vars)s}' % s, ''),
              g.target('tradeops_timescale_hypertable_compression_enabled{%(selector)s, %(vars)s}' % s, ''),
              g.target('tradeops_timescale_hypertable_size_bytes{%(selector)s, %(vars)s}' % s, ''),
            ],
            transformations: [
              { id: 'merge', options: {} },
              organize(['Time', 'job', 'instance', '__name__'], {
                'Value #A': 'Chunks',
                'Value #B': 'Compressed chunks',
                'Value #C': 'Compression',
                'Value #D': 'Size',
              }),
            ],
            overrides: [
              column('Compression', [{ id: 'mappings', value: g.boolMappings('off', 'on', 'text', 'green') }]),
              column('Size', [{ id: 'unit', value: 'bytes' }]),
            ],
          }),
          g.row('Background jobs'),
          g.table({
            title: 'Background jobs',
            description: "Per TimescaleDB job of a primary: outcome of the last run, running, paused, time since its last success and until its next start (negative: due). Amber \"Last run\" failed (TimescaleJobFailed warns): compression, retention or aggregate refresh is not done; read the job's errors in timescaledb_information.job_errors. Amber \"Next start in\" below -%d s on a job neither running nor paused: TimescaleJobOverdue, the scheduler is stuck or out of background workers." % t.timescaleJobOverdueSeconds,
            thresholds: g.thresholds([[null, 'text']]),
            targets: [
              g.target('tradeops_timescale_job_last_run_success{%(selector)s, %(vars)s} and %(primary)s' % s, ''),
              g.target('tradeops_timescale_job_running{%(selector)s, %(vars)s} and %(primary)s' % s, ''),
              g.target('tradeops_timescale_job_paused{%(selector)s, %(vars)s} and %(primary)s' % s, ''),
              g.target('time() - tradeops_timescale_job_last_success_timestamp_seconds{%(selector)s, %(vars)s} and %(primary)s' % s, ''),
              g.target('tradeops_timescale_job_next_start_timestamp_seconds{%(selector)s, %(vars)s} - time() and %(primary)s' % s, ''),
            ],
            transformations: [
              { id: 'merge', options: {} },
              organize(['Time', 'job', 'instance', '__name__'], {
                'Value #A': 'Last run',
                'Value #B': 'Running',
                'Value #C': 'Paused',
                'Value #D': 'Since last success',
                'Value #E': 'Next start in',
              }),
            ],
            overrides: [
              column('Last run', [
                { id: 'mappings', value: g.boolMappings('failed', 'ok', 'orange') },
                { id: 'custom.cellOptions', value: { type: 'color-background' } },
              ]),
              column('Running', [{ id: 'mappings', value: g.boolMappings('no', 'running', 'text', 'blue') }]),
              column('Paused', [{ id: 'mappings', value: g.boolMappings('no', 'paused', 'text', 'orange') }]),
              column('Since last success', [{ id: 'unit', value: 's' }]),
              column('Next start in', [{ id: 'unit', value: 's' }]
                                      + colored(g.thresholds([[null, 'orange'], [-t.timescaleJobOverdueSeconds, 'green']]))),
            ],
          }),
          g.timeseries({
            title: 'Job failures',
            description: 'Failed runs of each job of a primary per interval. Any bar while the last run succeeded is TimescaleJobFailingIntermittently (warns after a failure in the last hour); a failing last run is TimescaleJobFailed. Read timescaledb_information.job_errors for the cause.',
            unit: 'short',
            thresholds: g.thresholds([[null, 'green'], [1, 'orange']]),
            thresholdsStyle: 'off',
            targets: [g.target(|||
              sum by (target, job_id, proc, hypertable) (increase(tradeops_timescale_job_failures_total{%(selector)s, %(vars)s}[$__rate_interval]))
              and on (target) (tradeops_timescale_in_recovery{%(selector)s, %(vars)s} == 0)
            ||| % s, '{{proc}} {{job_id}} {{hypertable}} ({{target}})')],
          }),
          g.timeseries({
            title: 'Jobs overdue',
            description: 'Seconds since each job of a primary was due to start, for jobs neither running nor paused (below zero: not due yet). Above the line (%d s) for 5 minutes, TimescaleJobOverdue warns: the job scheduler is stuck or out of background workers (timescaledb.max_background_workers); check the scheduler in pg_stat_activity.' % t.timescaleJobOverdueSeconds,
            unit: 's',
            thresholds: g.thresholds([[null, 'green'], [t.timescaleJobOverdueSeconds, 'orange']]),
            targets: [g.target(|||
              time() - tradeops_timescale_job_next_start_timestamp_seconds{%(selector)s, %(vars)s}
              and on (job, instance, target, job_id) tradeops_timescale_job_paused{%(selector)s, %(vars)s} == 0
              and on (job, instance, target, job_id) tradeops_timescale_job_running{%(selector)s, %(vars)s} == 0
              and %(primary)s
            ||| % s, '{{proc}} {{job_id}} {{hypertable}} ({{target}})')],
          }),
          g.row('Replication'),
          g.stat({
            title: 'Streaming standbys',
            description: 'On a primary: standbys attached and streaming WAL. Amber at zero: no hot copy to fail over to; when one streamed in the last day TimescaleReplicaStreamingLost warns (a primary that never had a standby stays amber here and quiet in the alerts). Check the standbys below and their servers.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'orange'], [1, 'green']]),
            targets: [g.target('tradeops_timescale_replicas_streaming{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
          }),
          g.stat({
            title: 'Receivers not streaming',
            description: 'On a primary: attached WAL receivers that are not streaming (stuck in startup or catch-up, or taking a base backup). Amber from one: for 15 minutes TimescaleReplicasNotStreaming warns; that standby is not a usable copy. Look at pg_stat_replication on the primary.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'green'], [1, 'orange']]),
            targets: [g.target('tradeops_timescale_replicas_connected{%(selector)s, %(vars)s} - on (job, instance, target) tradeops_timescale_replicas_streaming{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
          }),
          g.stat({
            title: 'Standby WAL receiver',
            description: 'On a standby: whether its WAL receiver streams from the primary. Amber (TimescaleStandbyNotStreaming warns after 5 minutes): it falls behind or replays only from the WAL archive; check primary_conninfo, the primary and the network.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'orange'], [1, 'green']]),
            mappings: g.boolMappings('not streaming', 'streaming', 'orange'),
            targets: [g.target('tradeops_timescale_standby_wal_receiver_streaming{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
          }),
          g.stat({
            title: 'Inactive replication slots',
            description: 'On a primary: replication slots with no consumer. Amber from one: the slot keeps WAL forever; with more than the retained-WAL line to the right TimescaleInactiveSlotRetainingWal warns. Drop the slot (pg_drop_replication_slot) if its standby is gone for good.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'green'], [1, 'orange']]),
            targets: [g.target('tradeops_timescale_replication_slots_inactive{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
          }),
          g.timeseries({
            title: 'Replay lag',
            description: "How far behind standbys replay: the worst attached standby as seen by its primary, and each standby's own lag (time since the last replayed commit, 0 once everything received is replayed). Above the line (%d s) for 5 minutes, TimescaleReplicaReplayLag warns, and TimescaleStandbyReplayLag while the standby holds received WAL not yet replayed: reads on the standby are stale and a failover would wait or lose data. An idle primary does not count as lag." % t.timescaleReplicaLagSeconds,
            unit: 's',
            thresholds: g.thresholds([[null, 'green'], [t.timescaleReplicaLagSeconds, 'orange']]),
            targets: [
              g.target('tradeops_timescale_replica_max_replay_lag_seconds{%(selector)s, %(vars)s}' % s, 'worst standby of {{target}}'),
              g.target('tradeops_timescale_standby_replay_lag_seconds{%(selector)s, %(vars)s}' % s, 'standby {{target}}'),
            ],
            overrides: [{
              matcher: { id: 'byRegexp', options: 'standby .*' },
              properties: [{ id: 'thresholds', value: g.thresholds([[null, 'green'], [t.timescaleStandbyLagSeconds, 'orange']]) }],
            }],
          }),
          g.timeseries({
            title: 'WAL retained by replication slots',
            description: 'On a primary: WAL held back by the slot that retains the most. Above the line (%s) while a slot is inactive, TimescaleInactiveSlotRetainingWal warns after 15 minutes: pg_wal grows until the disk fills and the primary stops. Drop or reattach the slot.' % std.format('%d GiB', t.timescaleSlotRetainedBytes / (1024 * 1024 * 1024)),
            unit: 'bytes',
            thresholds: g.thresholds([[null, 'green'], [t.timescaleSlotRetainedBytes, 'orange']]),
            targets: [g.target('tradeops_timescale_replication_slot_max_retained_bytes{%(selector)s, %(vars)s}' % s, '{{target}}')],
          }),
          g.row('Connections and transactions'),
          g.timeseries({
            title: 'Connections / usable max',
            description: 'Client connections as a share of what ordinary roles may open (max_connections minus superuser_reserved_connections). Amber from %g (TimescaleConnectionsNearLimit warns after 5 minutes), red at 1: new sessions of ingest and trading services are refused. See the states to the right: many idle ones are a pool that is too large.' % t.timescaleConnectionsRatio,
            unit: 'percentunit',
            thresholds: g.rag(t.timescaleConnectionsRatio, 1),
            targets: [g.target(|||
              sum by (job, instance, target) (tradeops_timescale_connections{%(selector)s, %(vars)s})
              / on (job, instance, target)
              (tradeops_timescale_max_connections{%(selector)s, %(vars)s} - tradeops_timescale_reserved_connections{%(selector)s, %(vars)s})
            ||| % s, '{{target}}')],
            w: 8,
          }),
          g.timeseries({
            title: 'Connections by state',
            description: "Client connections by state (active, idle, idle in transaction, ...). A growing idle-in-transaction band is an application that opens transactions and goes away (see the oldest transactions); \"unknown\" means the exporter's role lacks pg_read_all_stats.",
            unit: 'short',
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [g.target('tradeops_timescale_connections{%(selector)s, %(vars)s}' % s, '{{state}} ({{target}})')],
            w: 8,
          }),
          g.timeseries({
            title: 'Oldest transactions',
            description: 'Age of the oldest open transaction and of the oldest one idle in transaction. Above %d s TimescaleLongTransaction warns, idle in transaction above %d s TimescaleIdleInTransaction: it blocks vacuum (bloat) and holds locks ingest may wait on. Find it in pg_stat_activity and end it with pg_terminate_backend if its owner cannot.' % [t.timescaleLongTransactionSeconds, t.timescaleIdleInTransactionSeconds],
            unit: 's',
            thresholds: g.thresholds([[null, 'green'], [t.timescaleLongTransactionSeconds, 'orange']]),
            targets: [
              g.target('tradeops_timescale_oldest_transaction_seconds{%(selector)s, %(vars)s}' % s, 'oldest {{target}}'),
              g.target('tradeops_timescale_oldest_idle_in_transaction_seconds{%(selector)s, %(vars)s}' % s, 'idle in transaction {{target}}'),
            ],
            overrides: [{
              matcher: { id: 'byRegexp', options: 'idle in transaction .*' },
              properties: [{ id: 'thresholds', value: g.thresholds([[null, 'green'], [t.timescaleIdleInTransactionSeconds, 'orange']]) }],
            }],
            w: 8,
          }),
          g.timeseries({
            title: 'Transaction-ID age',
            description: "Transactions since each database's oldest unfrozen XID (counted on primaries). Amber from %s (TimescaleXidAgeHigh warns), red from %s (TimescaleXidWraparoundNear pages): near 2.1G PostgreSQL refuses every write, ingest included. Find what blocks freezing (long transactions, inactive slots, failing autovacuum) and VACUUM FREEZE the oldest tables." % [std.format('%.1fG', t.timescaleXidAge / 1e9), std.format('%.1fG', t.timescaleXidAgeCritical / 1e9)],
            unit: 'short',
            thresholds: g.rag(t.timescaleXidAge, t.timescaleXidAgeCritical),
            targets: [g.target('tradeops_timescale_database_xid_age{%(selector)s, %(vars)s} and %(primary)s' % s, '{{target}}')],
          }),
          g.timeseries({
            title: 'Deadlocks, rollbacks and recovery conflicts',
            description: 'Per second in the probed database: deadlocks (any one: TimescaleDeadlocks warns, a writer must retry or loses that write), rolled-back transactions (failing writers) and, on standbys, queries cancelled by recovery conflicts. Check the server log for the statements involved.',
            unit: 'ops',
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [
              g.target('sum by (target) (rate(tradeops_timescale_deadlocks_total{%(selector)s, %(vars)s}[$__rate_interval]))' % s, 'deadlocks {{target}}'),
              g.target('sum by (target) (rate(tradeops_timescale_transactions_rolled_back_total{%(selector)s, %(vars)s}[$__rate_interval]))' % s, 'rollbacks {{target}}'),
              g.target('sum by (target) (rate(tradeops_timescale_recovery_conflicts_total{%(selector)s, %(vars)s}[$__rate_interval]))' % s, 'recovery conflicts {{target}}'),
            ],
            overrides: [{
              matcher: { id: 'byRegexp', options: 'deadlocks .*' },
              properties: [{ id: 'color', value: { mode: 'fixed', fixedColor: 'red' } }],
            }],
          }),
        ],
      }),
  },
}
