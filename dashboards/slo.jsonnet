// Service-level objectives (rules/src/slo.libsonnet): per SLO its objective,
// the error budget left over its budget window, the burn rates over the
// windows the rules record, the multi-window burn-rate alert pairs against
// their thresholds, the good/valid ratio, and when evaluations were good, bad
// or out of session.
local a = import '../bundle/lib/alerts.libsonnet';
local g = import 'lib/grafana.libsonnet';

{
  grafanaDashboards+:: {
    slo:
      local cfg = $._config;
      // A window as the rules write it (rules/src/slo.libsonnet): unscaled
      // durations as written, time-scaled ones scaled.
      local w(d) = if a.seconds(a.window(cfg, d)) == a.seconds(d) then d else a.window(cfg, d);
      // The burn-rate windows and alert pairs of rules/src/slo.libsonnet.
      local windows = std.foldl(
        function(acc, d) if std.member([a.seconds(x) for x in acc], a.seconds(w(d))) then acc else acc + [w(d)],
        ['5m', '30m', '1h', '2h', '6h', '1d', '3d'],
        []
      );
      local burns = [
        { long: w('1h'), short: w('5m'), factor: 14.4, severity: 'critical' },
        { long: w('6h'), short: w('30m'), factor: 6, severity: 'critical' },
        { long: w('1d'), short: w('2h'), factor: 3, severity: 'warning' },
        { long: w('3d'), short: w('6h'), factor: 1, severity: 'warning' },
      ];
      local maxFactor = std.foldl(std.max, [b.factor for b in burns], 0);
      // Thresholds of one window's burn rate: red from the factor of the
      // paging pair it belongs to, amber from the factor of its ticket pair
      // (else from 1, faster than sustainable).
      local factors(window, severity) = [
        b.factor
        for b in burns
        if b.severity == severity && (b.long == window || b.short == window)
      ];
      local windowThresholds(window) =
        local red = factors(window, 'critical');
        local amber = factors(window, 'warning');
        local amberAt = if amber == [] then 1 else std.foldl(std.min, amber, amber[0]);
        g.thresholds([[null, 'green'], [amberAt, 'orange']]
                     + (if red == [] then [] else [[std.foldl(std.min, red, red[0]), 'red']]));
      local slos = [
        {
          key: 'fixAvailability',
          name: 'fix_availability',
          title: 'FIX session availability',
          by: ['session'],
          vars: 'session=~"$session"',
          legend: '{{session}}',
          entity: 'Session',
          prefix: 'FixAvailability',
          meaning: 'of in-session time logged on (the engine session per its log, else the monitoring session)',
          area: 'fix',
          linkVars: '${session:queryparam}',
          bad: 'the session was not logged on',
          next: 'open the FIX sessions dashboard (panel link) for the session and its logon failures',
        },
        {
          key: 'ingestFreshness',
          name: 'ingest_freshness',
          title: 'Ingest freshness',
          by: ['target', 'table'],
          vars: 'target=~"$target", table=~"$table"',
          legend: '{{target}} / {{table}}',
          entity: 'Target / table',
          prefix: 'TimescaleFreshness',
          meaning: 'of in-session time each watched table is within its freshness SLA',
          area: 'timescale',
          linkVars: '${target:queryparam}',
          bad: 'the table was older than its freshness SLA',
          next: 'open the TimescaleDB dashboard (panel link) for the table and its ingest jobs',
        },
        {
          key: 'consumerTimeLag',
          name: 'consumer_time_lag',
          title: 'Consumer time lag',
          by: ['target', 'group'],
          vars: 'target=~"$target", group=~"$group"',
          legend: '{{target}} / {{group}}',
          entity: 'Target / group',
          prefix: 'KafkaTimeLag',
          meaning: 'of in-session time each consumer group is within its time-lag objective',
          area: 'kafka',
          linkVars: '${target:queryparam}',
          bad: 'the group lagged more than its time-lag objective',
          next: 'open the Kafka dashboard (panel link) for the group and its partitions',
        },
      ];
      // The windows recorded by the rules, when the rules are part of the
      // object (the bundle): the dashboard must read exactly those.
      local recorded(slo) = std.set([
        r.labels.window
        for grp in $.rules.slo.groups
        for r in grp.rules
        if std.objectHas(r, 'record') && r.record == 'tradeops:slo_%s:burn_rate' % slo.name
      ]);
      assert !std.objectHasAll($, 'rules') || std.all([recorded(slo) == std.set(windows) for slo in slos])
             : 'dashboards/slo.jsonnet: burn-rate windows differ from rules/src/slo.libsonnet';
      local series(slo, what) = 'tradeops:slo_%s:%s' % [slo.name, what];
      local objective(slo) = cfg.slos[slo.key].objective;
      local budget(slo) = 1 - objective(slo);
      local pct(x) = '%g %%' % (100 * x);
      local by(slo) = std.join(', ', slo.by);
      // The alert pairs of a severity, for descriptions: '1h/5m and 6h/30m'.
      local pairs(severity) = std.join(' and ', ['%s/%s' % [b.long, b.short] for b in burns if b.severity == severity]);
      // The good/valid ratio over a window: red where the window burns at the
      // fastest paging factor, amber below the objective.
      local ratioThresholds(slo) = g.ragLow(std.max(0, 1 - maxFactor * budget(slo)), objective(slo));
      local sloPanels(slo) = [
        g.row('%s: objective %s over %s' % [slo.title, pct(objective(slo)), cfg.slos[slo.key].budgetWindow]),
        g.stat({
          title: 'Objective',
          description: "The %s objective: %s %s, counted over %s. The error budget is the rest, %s of the valid time; it burns only while the entity's calendar is in session. Informational: the other panels of the row are coloured against it." % [slo.title, pct(objective(slo)), slo.meaning, cfg.slos[slo.key].budgetWindow, pct(budget(slo))],
          unit: 'percentunit',
          decimals: 2,
          thresholds: g.thresholds([[null, 'text']]),
          targets: [g.target('vector(%s)' % a.num(objective(slo)), 'objective', instant=true)],
          w: 4,
        }),
        g.stat({
          title: 'Error budget remaining (%s)' % cfg.slos[slo.key].budgetWindow,
          description: 'What is left of each error budget over the last %s: 100 %% untouched, 0 spent, negative overspent (the objective is missed over the period). No alert fires on it (the burn-rate alerts do); red when overspent, amber below 25 %%: spend what is left carefully (changes, maintenance) until it recovers.' % cfg.slos[slo.key].budgetWindow,
          unit: 'percentunit',
          decimals: 1,
          thresholds: g.ragLow(0, 0.25),
          targets: [g.target('%s{%s}' % [series(slo, 'budget_remaining'), slo.vars], slo.legend, instant=true)],
          w: 10,
        }),
        g.stat({
          title: 'Good / valid over the time range',
          description: 'Share of the valid (in-session) evaluations in the time range that were good. Amber below the objective (%s): the budget burned faster than sustainable over the range; red below %s, the fastest paging rate (%sx). When it is not green, "Good, bad and closed" shows when evaluations went bad (%s); then %s.' % [pct(objective(slo)), pct(std.max(0, 1 - maxFactor * budget(slo))), a.num(maxFactor), slo.bad, slo.next],
          unit: 'percentunit',
          decimals: 2,
          thresholds: ratioThresholds(slo),
          targets: [g.target(|||
            sum by (%(by)s) (sum_over_time(%(good)s{%(vars)s}[$__range]))
            / (sum by (%(by)s) (sum_over_time(%(valid)s{%(vars)s}[$__range])) > 0)
          ||| % { by: by(slo), good: series(slo, 'good'), valid: series(slo, 'valid'), vars: slo.vars }, slo.legend, instant=true)],
          w: 10,
        }),
        g.table({
          title: 'Burn rates now',
          description: "Burn rate of each %s over every window the rules record (%s): the error ratio over the window divided by the budget, 1 spends the budget exactly over %s. A cell is red from the factor of the paging pair its window belongs to (%s), amber from its ticket pair's factor (%s) or else from 1. An empty cell: no valid sample in that window (out of session)." % [
            std.asciiLower(slo.entity),
            std.join(', ', windows),
            cfg.slos[slo.key].budgetWindow,
            std.join(', ', ['%sx over %s and %s' % [a.num(b.factor), b.long, b.short] for b in burns if b.severity == 'critical']),
            std.join(', ', ['%sx over %s and %s' % [a.num(b.factor), b.long, b.short] for b in burns if b.severity != 'critical']),
          ],
          decimals: 1,
          thresholds: g.thresholds([[null, 'green'], [1, 'orange']]),
          custom: { align: 'auto', cellOptions: { type: 'color-background' } },
          targets: [g.target(
            'label_join(%s{%s}, "entity", " / ", %s)' % [series(slo, 'burn_rate'), slo.vars, std.join(', ', ['"%s"' % l for l in slo.by])],
            '',
            instant=true
          )],
          transformations: [
            { id: 'groupingToMatrix', options: { columnField: 'window', rowField: 'entity', valueField: 'Value' } },
            {
              id: 'organize',
              options: {
                indexByName: { 'entity\\window': 0 } + { [windows[i]]: i + 1 for i in std.range(0, std.length(windows) - 1) },
                renameByName: { 'entity\\window': slo.entity },
              },
            },
          ],
          overrides: [{
            matcher: { id: 'byName', options: slo.entity },
            properties: [{ id: 'custom.cellOptions', value: { type: 'auto' } }],
          }] + [
            {
              matcher: { id: 'byName', options: window },
              properties: [{ id: 'thresholds', value: windowThresholds(window) }],
            }
            for window in windows
          ],
          w: 12,
        }),
        g.timeseries({
          title: 'Burn-rate alerts: burn / threshold',
          description: "For each alert pair, the lower of its two burn rates divided by the pair's factor: at 1 and above (the red line) both windows burn faster than the threshold and %sBudgetBurn<long window> fires after its for: (once the long window holds enough in-session samples). The %s pairs page, the %s pairs open a ticket. A line rising towards 1 is the budget burning now (%s): %s." % [slo.prefix, pairs('critical'), pairs('warning'), slo.bad, slo.next],
          unit: 'none',
          decimals: 2,
          thresholds: g.thresholds([[null, 'green'], [1, 'red']]),
          links: [g.dashboardLink(cfg, slo.area, query=slo.linkVars)],
          targets: [
            g.target(
              'min by (%s) (%s{%s, window=~"%s|%s"}) / %s' % [by(slo), series(slo, 'burn_rate'), slo.vars, b.long, b.short, a.num(b.factor)],
              '%s %s/%s (%s)' % [slo.legend, b.long, b.short, if b.severity == 'critical' then 'page' else 'ticket'],
            )
            for b in burns
          ],
          w: 12,
        }),
        g.timeseries({
          title: 'Good / valid ratio (%s)' % w('1h'),
          description: 'Share of the valid (in-session) evaluations over the last %s that were good, per %s, against the objective (%s, amber below) and the fastest paging rate (red below). Gaps are closed hours: they count neither way.' % [w('1h'), std.asciiLower(slo.entity), pct(objective(slo))],
          unit: 'percentunit',
          thresholds: ratioThresholds(slo),
          targets: [g.target(
            'sum_over_time(%(good)s{%(vars)s}[%(w)s]) / (sum_over_time(%(valid)s{%(vars)s}[%(w)s]) > 0)' % { good: series(slo, 'good'), valid: series(slo, 'valid'), vars: slo.vars, w: w('1h') },
            slo.legend,
          )],
          w: 12,
        }),
        g.stateTimeline({
          title: 'Good, bad and closed',
          description: 'Each evaluation per %s: good (met the objective), bad (in session and missed it: this is what burns the budget) or closed (out of session or in the warm-up, not counted). A gap is no verdict at all: the probe run failed, which its own "down" alert covers. Where it is red, %s: %s.' % [std.asciiLower(slo.entity), slo.bad, slo.next],
          unit: 'none',
          thresholds: g.thresholds([[null, 'text'], [1, 'red'], [2, 'green']]),
          mappings: [{
            type: 'value',
            options: {
              '0': { text: 'closed', color: 'text', index: 0 },
              '1': { text: 'bad', color: 'red', index: 1 },
              '2': { text: 'good', color: 'green', index: 2 },
            },
          }],
          links: [g.dashboardLink(cfg, slo.area, query=slo.linkVars)],
          targets: [g.target('%s{%s} + %s{%s}' % [series(slo, 'good'), slo.vars, series(slo, 'valid'), slo.vars], slo.legend)],
          w: 12,
        }),
      ];
      g.dashboard(cfg, 'slo', {
        description: 'Service-level objectives of the trading backbone (FIX session availability, ingest freshness, consumer time lag), counted in in-session time only: the objective, the error budget left, the burn rates over the windows the rules record and the multi-window burn-rate alerts against their thresholds.',
        tags: ['slo'],
        variables: [
          g.queryVariable('session', 'FIX session', series(slos[0], 'valid'), 'session'),
          g.queryVariable('target', 'Target', 'tradeops_up{%s, kind=~"timescale|kafka"}' % cfg.selector, 'target'),
          g.queryVariable('table', 'Table', '%s{target=~"$target"}' % series(slos[1], 'valid'), 'table'),
          g.queryVariable('group', 'Consumer group', '%s{target=~"$target"}' % series(slos[2], 'valid'), 'group'),
        ],
        panels: [
          g.table({
            title: 'SLO alerts firing',
            description: 'Every burn-rate alert firing now, with its SLO and entity. Critical ones page (the %s pairs), warnings open a ticket (the %s pairs). Find the SLO\'s row below: the red cells of "Burn rates now" and the red bands of "Good, bad and closed" say how fast and since when.' % [pairs('critical'), pairs('warning')],
            thresholds: g.thresholds([[null, 'text']]),
            targets: [g.target('sum by (alertname, severity, slo, session, target, table, group) (ALERTS{alertstate="firing", slo!=""})', '', instant=true)],
            transformations: [{ id: 'organize', options: { excludeByName: { Time: true, Value: true } } }],
            h: 6,
          }),
        ] + std.flattenArrays([sloPanels(slo) for slo in slos]),
      }),
  },
}
