// The on-call overview: the SLA packet at a glance, red/amber/green per area
// and per target from the readiness recording rules, the firing alerts and the
// trading calendars.
local g = import 'lib/grafana.libsonnet';

{
  grafanaDashboards+:: {
    overview:
      local cfg = $._config;
      local sla = cfg.sla;
      local sel = cfg.selector;
      local hb(names) = { selector: sel, names: names };
      local areaDashboard(area) = if area == 'sla' then 'overview' else area;
      local targetAreas = [a for a in cfg.areas if a != 'sla' && a != 'exporter'];
      local riskRed = sla.riskCycleSeconds * sla.riskMissedCycles;
      g.dashboard(cfg, 'overview', {
        description: 'The on-call overview of the trading backbone: the SLA packet, readiness per area and target, firing alerts and the trading calendars.',
        tags: ['overview'],
        panels: [
          g.row('SLA packet'),
          g.stat({
            title: 'SLA heartbeats: age / max gap',
            description: 'Age of each SLA component heartbeat (%s) as a multiple of its configured maximum gap. Amber: one gap missed (SlaHeartbeatMissed warns); red: two gaps missed (SlaHeartbeatMissedTwice pages). When red, check the component writing the heartbeat key, then Redis (the Redis dashboard).' % sla.heartbeats,
            unit: 'none',
            decimals: 2,
            thresholds: g.rag(1, 2),
            targets: [g.target(|||
              (time() - max by (target, heartbeat) (tradeops_redis_heartbeat_timestamp_seconds{%(selector)s, heartbeat=~"%(names)s"}))
              / on (target, heartbeat)
              max by (target, heartbeat) (tradeops_redis_heartbeat_max_gap_seconds{%(selector)s, heartbeat=~"%(names)s"})
            ||| % hb(sla.heartbeats), '{{heartbeat}} ({{target}})', instant=true)],
            w: 8,
          }),
          g.stat({
            title: 'Order ack p95',
            description: 'p95 of the order-entry to acknowledgement round trip per FIX session over 5m (from the FIX store reader). Red at the SLA limit of %g s (SlaOrderLatencyHigh, team execution), amber from 80 %% of it. When red, check the FIX session and the execution gateway.' % sla.orderLatencyP95Seconds,
            unit: 's',
            decimals: 3,
            thresholds: g.rag(0.8 * sla.orderLatencyP95Seconds, sla.orderLatencyP95Seconds),
            targets: [g.target('tradeops:fix_order_ack_latency_seconds:p95', '{{session}}', instant=true)],
            w: 6,
          }),
          g.stat({
            title: 'Position drift',
            description: 'Largest position drift per book and strategy, exported by the trading runtime (docs/contract.md). Red at the SLA limit of %g %% (SlaPositionDrift, team risk), amber from 80 %% of it. When red, hand over to risk; when empty, the runtime does not export the contract series.' % (100 * sla.positionDriftRatio),
            unit: 'percentunit',
            decimals: 2,
            thresholds: g.rag(0.8 * sla.positionDriftRatio, sla.positionDriftRatio),
            targets: [g.target('max by (book, strategy) (tradeops_runtime_position_drift_ratio{%s})' % sla.runtimeSelector, '{{book}} / {{strategy}}', instant=true)],
            w: 5,
          }),
          g.stat({
            title: 'Risk heartbeat age',
            description: 'Seconds since the risk service last wrote its heartbeat key (%s). Amber after one %d s cycle, red after %d missed cycles (SlaRiskHeartbeatMissed pages, team risk). When red, check the risk service first, then Redis.' % [sla.riskHeartbeat, sla.riskCycleSeconds, sla.riskMissedCycles],
            unit: 's',
            decimals: 0,
            thresholds: g.rag(sla.riskCycleSeconds, riskRed),
            targets: [g.target('time() - max by (target) (tradeops_redis_heartbeat_timestamp_seconds{%(selector)s, heartbeat="%(names)s"})' % hb(sla.riskHeartbeat), '{{target}}', instant=true)],
            w: 5,
          }),
          g.timeseries({
            title: 'SLA heartbeat age',
            description: 'Age of each SLA heartbeat over time; the lines cross 1 and 2 gaps where they warn and page. A saw-tooth is healthy; a ramp means the writer stopped. When red, check the component writing the key.',
            unit: 's',
            thresholds: g.rag(sla.riskCycleSeconds, riskRed),
            thresholdsStyle: 'off',
            targets: [g.target('time() - max by (target, heartbeat) (tradeops_redis_heartbeat_timestamp_seconds{%(selector)s, heartbeat=~"%(names)s|%(risk)s"})' % (hb(sla.heartbeats) { risk: sla.riskHeartbeat }), '{{heartbeat}} ({{target}})')],
          }),
          g.timeseries({
            title: 'Order ack p95 over time',
            description: 'p95 order acknowledgement latency per FIX session against the %g s SLA line. When it crosses the red line during the session, check the FIX session dashboard and the execution gateway.' % sla.orderLatencyP95Seconds,
            unit: 's',
            thresholds: g.rag(0.8 * sla.orderLatencyP95Seconds, sla.orderLatencyP95Seconds),
            targets: [g.target('tradeops:fix_order_ack_latency_seconds:p95', '{{session}}')],
          }),
          g.row('Readiness'),
          g.stat({
            title: 'Overall',
            description: 'The worst status of every area: green ok, amber degraded (a warning fires), red down (a critical fires). When red, find the red area below and follow its link.',
            unit: 'none',
            thresholds: g.statusThresholds,
            mappings: g.statusMappings,
            targets: [g.target('tradeops:overall_status', 'overall', instant=true)],
            w: 4,
          }),
        ] + [
          g.stat({
            title: 'Area: %s' % area,
            description: 'Readiness of the %s area from the alerts that fire in it: green ok, amber a warning, red a critical. When red, open the %s dashboard (panel link) and the firing alerts below.' % [area, cfg.dashboards[areaDashboard(area)].title],
            unit: 'none',
            thresholds: g.statusThresholds,
            mappings: g.statusMappings,
            links: [g.dashboardLink(cfg, areaDashboard(area))],
            targets: [g.target('tradeops:area_status{area="%s"}' % area, area, instant=true)],
            w: 5,
            h: 3,
          })
          for area in cfg.areas
        ] + [
          g.stat({
            title: 'Targets: %s' % area,
            description: 'Readiness of each %s target: green ok, amber a warning, red a critical fires for it. When red, click the target to open the %s dashboard for it.' % [area, cfg.dashboards[area].title],
            unit: 'none',
            thresholds: g.statusThresholds,
            mappings: g.statusMappings,
            links: [g.dashboardLink(cfg, area)],
            fieldLinks: [g.dashboardLink(cfg, area, 'Open ${__field.labels.target}', 'var-target=${__field.labels.target}')],
            targets: [g.target('tradeops:target_status{area="%s"}' % area, '{{target}}', instant=true)],
            w: 8,
          })
          for area in targetAreas
        ] + [
          g.stateTimeline({
            title: 'Readiness over time',
            description: 'Status of every area over the time range: when each went amber or red and for how long. When red, the firing alerts below name the cause.',
            unit: 'none',
            thresholds: g.statusThresholds,
            mappings: g.statusMappings,
            targets: [g.target('tradeops:area_status', '{{area}}')],
          }),
          g.row('Alerts and calendars'),
          g.table({
            title: 'Firing alerts',
            description: 'Every alert firing now, with its severity, area and target. Each alert links to its runbook (runbook_url) from the notification; a critical is what makes an area red.',
            thresholds: g.statusThresholds,
            targets: [g.target('sum by (alertname, severity, area, target, session) (ALERTS{alertstate="firing"})', '', instant=true)],
            transformations: [{ id: 'organize', options: { excludeByName: { Time: true, Value: true } } }],
            w: 16,
          }),
          g.stat({
            title: 'Calendars open',
            description: 'Whether each trading calendar is in a session now. Closed is not an error: "should be flowing" alerts wait for the open. When a calendar is closed during its trading hours, check the exporter\'s calendars: config.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'text'], [1, 'green']]),
            mappings: g.boolMappings('closed', 'open', 'text'),
            targets: [g.target('max by (calendar) (tradeops_calendar_open{%s})' % sel, '{{calendar}}', instant=true)],
            w: 4,
            h: 8,
          }),
          g.stat({
            title: 'Calendars in session',
            description: 'Whether each calendar is open and past its warm-up, which is when the gated alerts may fire. Open but not in session means the warm-up after the open is still running.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'text'], [1, 'green']]),
            mappings: g.boolMappings('no', 'in session', 'text'),
            targets: [g.target('tradeops:calendar_in_session', '{{calendar}}', instant=true)],
            w: 4,
            h: 8,
          }),
        ],
      }),
  },
}
