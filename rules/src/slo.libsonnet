// Service-level objectives: FIX session availability, ingest freshness and
// consumer time lag. Each SLO is measured in in-session time only:
//
//   tradeops:slo_<name>:valid  1 for an evaluation while the entity's calendar
//                              is in session past its warm-up and a verdict
//                              exists, 0 while closed (absent without a verdict:
//                              a failed probe run is neither good nor bad; its
//                              own "down" alert covers it)
//   tradeops:slo_<name>:good   1 for a valid evaluation that met the objective
//
// so the error ratio over a window w is 1 - sum_over_time(good[w]) /
// sum_over_time(valid[w]): closed hours count neither way, and an idle night
// spends no budget. `:burn_rate{window}` divides that by the error budget
// (1 - objective): 1 spends the budget exactly over the budget window.
//
// Alerts, multi-window multi-burn-rate (Google SRE workbook, ch. 5): page at
// 14.4x over 1h and 5m, and at 6x over 6h and 30m; ticket at 3x over 1d and 2h,
// and at 1x over 3d and 6h. Beyond the burn rates, a pair only judges a long
// window that holds at least `minEvents` valid samples and at least as many
// in-session samples as its short window spans, so the first minutes after an
// open (a long window made of a handful of samples) do not page.
local a = import '../../bundle/lib/alerts.libsonnet';

{
  _config+:: {
    slos+: {
      // The period the error budget is counted over for
      // `:budget_remaining` (Prometheus must retain that much: its default
      // retention is 15d).
      fixAvailability+: { budgetWindow: '30d' },
      ingestFreshness+: { budgetWindow: '30d' },
      consumerTimeLag+: { budgetWindow: '30d' },
    },
  },

  rules+:: {
    local cfg = $._config,
    // A window as written when the build is not time-scaled ('30d', not '4w2d').
    local w(d) = if a.seconds(a.window(cfg, d)) == a.seconds(d) then d else a.window(cfg, d),

    // The four alerting pairs: long and short window, burn-rate factor.
    local burns = [
      { long: '1h', short: '5m', factor: 14.4, severity: 'critical', 'for': '2m' },
      { long: '6h', short: '30m', factor: 6, severity: 'critical', 'for': '15m' },
      { long: '1d', short: '2h', factor: 3, severity: 'warning', 'for': '1h' },
      { long: '3d', short: '6h', factor: 1, severity: 'warning', 'for': '3h' },
    ],
    local windows = ['5m', '30m', '1h', '2h', '6h', '1d', '3d'],

    local slos = [
      {
        key: 'fixAvailability',
        name: 'fix_availability',
        area: 'fix',
        prefix: 'FixAvailability',
        by: 'session',
        vars: { session: 'session' },
        noun: 'A FIX session',
        budgetName: 'availability',
        entity: 'FIX session {{ $labels.session }}',
        meaning: 'of in-session time logged on',
        // The engine's own session (fix_store: logged on, per its event log) when
        // the exporter reads it, else the monitoring session (fix: the last
        // logon + TestRequest + logout succeeded). Time outside the session's
        // own FIX schedule is not valid.
        valid: |||
          max by (session) (
            label_replace(tradeops:target_in_session{kind=~"fix|fix_store"}, "session", "$1", "target", "(.*)")
          )
          * on (session)
          (
            max by (session) (
              tradeops_fix_session_in_schedule{%(selector)s}
              and on (job, instance, session) tradeops_fix_session_logged_on{%(selector)s}
            )
            or
            max by (session) (
              tradeops_fix_probe_in_schedule{%(selector)s}
              and on (job, instance, session) tradeops_fix_probe_success{%(selector)s}
            )
          )
        ||| % cfg,
        good: |||
          tradeops:slo_fix_availability:valid
          * on (session)
          (
            max by (session) (tradeops_fix_session_logged_on{%(selector)s})
            or
            max by (session) (tradeops_fix_probe_success{%(selector)s})
          )
        ||| % cfg,
      },
      {
        key: 'ingestFreshness',
        name: 'ingest_freshness',
        area: 'timescale',
        prefix: 'TimescaleFreshness',
        by: 'target, table',
        vars: { target: 'target', table: 'table' },
        noun: 'A watched table',
        budgetName: 'ingest-freshness',
        entity: 'Table {{ $labels.table }} on {{ $labels.target }}',
        meaning: 'of in-session time within its freshness SLA',
        // The table's calendar comes with its freshness SLA gauge.
        valid: |||
          max by (target, table) (
            0 * tradeops_timescale_table_freshness_sla_seconds{%(selector)s}
            + on (calendar) group_left ()
            tradeops:calendar_in_session
            and on (job, instance, target, table)
            tradeops_timescale_table_within_sla{%(selector)s}
          )
        ||| % cfg,
        good: |||
          tradeops:slo_ingest_freshness:valid
          * on (target, table)
          max by (target, table) (tradeops_timescale_table_within_sla{%(selector)s})
        ||| % cfg,
      },
      {
        key: 'consumerTimeLag',
        name: 'consumer_time_lag',
        area: 'kafka',
        prefix: 'KafkaTimeLag',
        by: 'target, group',
        vars: { target: 'target', group: 'group' },
        noun: 'A consumer group',
        budgetName: 'time-lag',
        entity: 'Consumer group {{ $labels.group }} on {{ $labels.target }}',
        meaning: 'of in-session time within its time-lag objective',
        // The group's calendar comes with its time-lag objective gauge.
        valid: |||
          max by (target, group) (
            0 * tradeops_kafka_consumer_group_lag_objective_seconds{%(selector)s}
            + on (calendar) group_left ()
            tradeops:calendar_in_session
            and on (job, instance, target, group)
            tradeops_kafka_consumer_group_max_lag_seconds{%(selector)s}
          )
        ||| % cfg,
        good: |||
          tradeops:slo_consumer_time_lag:valid
          * on (target, group)
          max by (target, group) (
            tradeops_kafka_consumer_group_max_lag_seconds{%(selector)s}
            <= bool on (job, instance, target, group)
            tradeops_kafka_consumer_group_lag_objective_seconds{%(selector)s}
          )
        ||| % cfg,
      },
    ],

    local series(slo, what) = 'tradeops:slo_%s:%s' % [slo.name, what],
    local budget(slo) = 1 - cfg.slos[slo.key].objective,

    // 1 - good/valid over a window, absent when the window holds no valid sample.
    local errorRatio(slo, window) = |||
      (
        1 - sum_over_time(%(good)s[%(w)s])
        / (sum_over_time(%(valid)s[%(w)s]) > 0)
      )
    ||| % { good: series(slo, 'good'), valid: series(slo, 'valid'), w: window },

    // The windows as built (a time-scaled build may fold two into one).
    local builtWindows = std.foldl(
      function(acc, d) if std.member([a.seconds(x) for x in acc], a.seconds(w(d))) then acc else acc + [w(d)],
      windows,
      []
    ),

    local burnRate(slo, window) = a.record(
      series(slo, 'burn_rate'),
      std.rstripChars(errorRatio(slo, window), '\n') + '\n/ %s\n' % a.num(budget(slo)),
      { window: window },
    ),

    local burnAlert(slo, b) =
      local objective = cfg.slos[slo.key].objective;
      local period = cfg.slos[slo.key].budgetWindow;
      local spend = b.factor * a.seconds(b.long) / a.seconds(period) * 100;
      a.alert(cfg, {
        name: slo.prefix + 'BudgetBurn' + b.long,
        area: slo.area,
        severity: b.severity,
        labels: { slo: slo.name },
        dashboard: 'slo',
        vars: slo.vars,
        expr: |||
          max without (window) (%(burn)s{window="%(long)s"}) > %(factor)s
          and on (%(by)s) %(burn)s{window="%(short)s"} > %(factor)s
          and on (%(by)s) (
            sum_over_time(%(valid)s[%(long)s])
            >= on (%(by)s) clamp_min(count_over_time(%(valid)s[%(short)s]), %(min)s)
          )
        ||| % {
          burn: series(slo, 'burn_rate'),
          valid: series(slo, 'valid'),
          by: slo.by,
          long: w(b.long),
          short: w(b.short),
          factor: a.num(b.factor),
          min: a.num(cfg.slos[slo.key].minEvents),
        },
        'for': b['for'],
        summary: '%s burns its %s error budget %s.' % [
          slo.noun,
          slo.budgetName,
          if b.factor == 1 then 'faster than sustainable over ' + w(b.long)
          else 'at %s times the sustainable rate over %s' % [a.num(b.factor), w(b.long)],
        ],
        description: '%(entity)s: the %(budgetName)s error budget (%(pct)s%% %(meaning)s) is burning {{ $value | printf "%%.1f" }} times as fast as sustainable over the last %(long)s, and still over the last %(short)s (the threshold, %(factor)s, spends %(spend)s%% of the %(period)s budget in %(long)s).' % {
          entity: slo.entity,
          budgetName: slo.budgetName,
          pct: a.num(objective * 100),
          meaning: slo.meaning,
          long: w(b.long),
          short: w(b.short),
          factor: a.num(b.factor),
          spend: a.num(spend),
          period: period,
        },
      }),

    slo: {
      groups: [
        a.group('tradeops-slo-' + slo.area, [
          a.record(series(slo, 'valid'), slo.valid),
          a.record(series(slo, 'good'), slo.good),
        ] + [
          burnRate(slo, window)
          for window in builtWindows
        ] + [
          burnAlert(slo, b)
          for b in burns
        ])
        for slo in slos
      ] + [
        // What is left of each budget over its budget window (1 untouched,
        // 0 spent, negative overspent), for the dashboards. Every 2 minutes is
        // plenty for a number that moves this slowly, and spares re-reading a
        // month of samples at every evaluation.
        a.group('tradeops-slo-budget', [
          a.record(
            series(slo, 'budget_remaining'),
            '1 - %s\n/ %s\n' % [
              std.rstripChars(errorRatio(slo, w(cfg.slos[slo.key].budgetWindow)), '\n'),
              a.num(budget(slo)),
            ],
            { window: w(cfg.slos[slo.key].budgetWindow) },
          )
          for slo in slos
        ]) + {
          interval: a.duration(std.max(120 * cfg.timeScale, a.seconds(cfg.evaluationInterval))),
        },
      ],
    },
  },
}
