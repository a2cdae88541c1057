// The exporter itself: targets up, probe durations against their deadlines,
// errors by reason, configuration reloads, probe-loop restarts, build info,
// and its HTTP server's connections against their cap.
local g = import 'lib/grafana.libsonnet';

{
  grafanaDashboards+:: {
    exporter:
      local cfg = $._config;
      local t = cfg.thresholds;
      local s = { selector: cfg.selector, vars: 'kind=~"$kind", target=~"$target"' };
      g.dashboard(cfg, 'exporter', {
        description: 'The exporter: which targets answer, how long their probe runs take against their deadlines, why they fail, and whether the process and its configuration are healthy.',
        tags: ['exporter'],
        variables: [
          g.queryVariable('kind', 'Kind', 'tradeops_up{%(selector)s}' % s, 'kind'),
          g.queryVariable('target', 'Target', 'tradeops_up{%(selector)s, kind=~"$kind"}' % s, 'target'),
        ],
        panels: [
          g.row('Targets'),
          g.stat({
            title: 'Targets up',
            description: 'Targets whose last probe run succeeded. When it falls, the "Targets down" panel and the errors by reason below say which and why.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'text']]),
            targets: [g.target('sum(tradeops_up{%(selector)s, %(vars)s})' % s, 'up', instant=true)],
            w: 4,
          }),
          g.stat({
            title: 'Targets down',
            description: 'Targets whose last probe run failed. Red from one: ProbeTargetDown follows after its for:. Look up the reason in "Probe errors by reason" and the target\'s own dashboard.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'green'], [1, 'red']]),
            targets: [g.target('sum(1 - tradeops_up{%(selector)s, %(vars)s})' % s, 'down', instant=true)],
            w: 4,
          }),
          g.stat({
            title: 'Configured targets',
            description: 'Targets in the exporter configuration, by kind. When a kind is missing or smaller than expected, the configuration loaded is not the one intended: check the reload status below.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'text']]),
            targets: [g.target('sum by (kind) (tradeops_exporter_targets{%(selector)s})' % s, '{{kind}}', instant=true)],
            w: 16,
          }),
          g.stateTimeline({
            title: 'Up per target',
            description: "Whether each target's probe runs succeeded over the time range. Red bands are failed runs; when a band is red now, see the probe errors by reason below.",
            unit: 'none',
            thresholds: g.thresholds([[null, 'red'], [1, 'green']]),
            mappings: g.boolMappings('down', 'up'),
            targets: [g.target('tradeops_up{%(selector)s, %(vars)s}' % s, '{{kind}} {{target}}')],
          }),
          g.row('Probe runs'),
          g.timeseries({
            title: 'Probe duration / deadline',
            description: "Each target's last probe run time as a share of its deadline. Amber from %g (ProbeNearDeadline warns), red at 1 (the run was cut off as a timeout). When red, the target is slow or unreachable: raise its timeout only if it is slow by design." % t.probeDeadlineRatio,
            unit: 'percentunit',
            thresholds: g.rag(t.probeDeadlineRatio, 1),
            targets: [g.target('tradeops_probe_duration_seconds{%(selector)s, %(vars)s} / on (job, instance, kind, target) tradeops_probe_timeout_seconds{%(selector)s, %(vars)s}' % s, '{{kind}} {{target}}')],
          }),
          g.timeseries({
            title: 'Probe duration',
            description: "Wall time of each target's last probe run, in seconds, with its configured deadline as a dashed series. When a duration reaches its deadline the run fails as a timeout.",
            unit: 's',
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [
              g.target('tradeops_probe_duration_seconds{%(selector)s, %(vars)s}' % s, '{{kind}} {{target}}'),
              g.target('max by (kind, target) (tradeops_probe_timeout_seconds{%(selector)s, %(vars)s})' % s, 'deadline {{kind}} {{target}}'),
            ],
            overrides: [{
              matcher: { id: 'byRegexp', options: 'deadline .*' },
              properties: [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }],
            }],
          }),
          g.timeseries({
            title: 'Probe errors by reason',
            description: 'Failed probe runs per second by target and reason (timeout, refused, auth, protocol, config, other). Any non-zero line is a failing target: the reason tells where to look (timeout: network or a slow target; auth: credentials; config: the exporter config).',
            unit: 'ops',
            thresholds: g.rag(0.0001, 0.01),
            thresholdsStyle: 'off',
            targets: [g.target('sum by (kind, target, reason) (rate(tradeops_probe_errors_total{%(selector)s, %(vars)s}[$__rate_interval]))' % s, '{{kind}} {{target}}: {{reason}}')],
          }),
          g.timeseries({
            title: 'Probe runs',
            description: "Probe runs started per second by target. A line that drops to zero means the target's probe loop stopped (see the loop restarts below).",
            unit: 'ops',
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [g.target('sum by (kind, target) (rate(tradeops_probe_runs_total{%(selector)s, %(vars)s}[$__rate_interval]))' % s, '{{kind}} {{target}}')],
          }),
          g.row('Exporter process'),
          g.stat({
            title: 'Last config reload',
            description: 'Whether the last configuration load or reload succeeded. Red (ConfigReloadFailed): the exporter keeps running the previous configuration; run `--check-config` on the file and fix what it names.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'red'], [1, 'green']]),
            mappings: g.boolMappings('failed', 'ok'),
            targets: [g.target('tradeops_exporter_config_last_reload_successful{%(selector)s}' % s, '{{instance}}', instant=true)],
            w: 4,
          }),
          g.stat({
            title: 'Config age',
            description: 'Time since the configuration was last loaded successfully. Informational; if a change was deployed and this did not reset, the reload did not happen (send SIGHUP or POST /-/reload).',
            unit: 's',
            thresholds: g.thresholds([[null, 'text']]),
            targets: [g.target('time() - tradeops_exporter_config_last_reload_success_timestamp_seconds{%(selector)s}' % s, '{{instance}}', instant=true)],
            w: 4,
          }),
          g.stat({
            title: 'Uptime',
            description: 'Time since the exporter process started. Amber under ten minutes: it restarted recently; if it keeps restarting, read its log.',
            unit: 's',
            thresholds: g.thresholds([[null, 'orange'], [600, 'green']]),
            targets: [g.target('time() - tradeops_exporter_start_time_seconds{%(selector)s}' % s, '{{instance}}', instant=true)],
            w: 4,
          }),
          g.timeseries({
            title: 'Probe loop restarts',
            description: 'Probe loops restarted after an unexpected crash of the loop itself, per target and interval. Any restart is a bug in the exporter: ProbeLoopRestarting warns; collect the log and report it.',
            unit: 'short',
            thresholds: g.rag(1, 3),
            thresholdsStyle: 'off',
            targets: [g.target('sum by (kind, target) (increase(tradeops_exporter_loop_restarts_total{%(selector)s, %(vars)s}[$__rate_interval]))' % s, '{{kind}} {{target}}')],
          }),
          g.timeseries({
            title: '/probe requests',
            description: 'On-demand /probe requests per second by module and outcome. Denied or bad_request lines mean a scrape config asks for a module or target the allow-list refuses: fix the scrape config.',
            unit: 'reqps',
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [g.target('sum by (module, outcome) (rate(tradeops_exporter_probe_requests_total{%(selector)s}[$__rate_interval]))' % s, '{{module}} {{outcome}}')],
          }),
          g.table({
            title: 'Build info',
            description: 'Exporter version, monitoring-bundle version and Python version of each exporter instance. When the bundle version differs from the rules loaded into Prometheus, deploy them together.',
            thresholds: g.thresholds([[null, 'text']]),
            targets: [g.target('tradeops_exporter_build_info{%(selector)s}' % s, '', instant=true)],
            transformations: [{ id: 'organize', options: { excludeByName: { Time: true, Value: true, __name__: true } } }],
            w: 12,
          }),
          g.row('HTTP server'),
          g.timeseries({
            title: 'HTTP connections',
            description: 'Connections open on each exporter instance, counted from accept (TLS handshakes under way included), with its --max-connections cap as a dashed series. At the cap every new connection is closed on accept, scrapes included, so Prometheus sees the exporter down: when the line nears the cap with no more scrapers than usual, some client is holding connections (see the closes beside), or raise the cap for more Prometheus replicas and /probe requests.',
            unit: 'short',
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [
              g.target('sum by (instance) (tradeops_exporter_http_connections{%(selector)s})' % s, '{{instance}}'),
              g.target('max by (instance) (tradeops_exporter_http_connections_limit{%(selector)s})' % s, 'cap {{instance}}'),
            ],
            overrides: [{
              matcher: { id: 'byRegexp', options: 'cap .*' },
              properties: [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }],
            }],
          }),
          g.timeseries({
            title: 'HTTP connections closed by the server',
            description: 'Connections the exporter closed itself, per second, by why: limit (accepted beyond the cap and closed at once: scrapes are failing), header_timeout (request headers or TLS handshake not complete within --header-timeout: slow or hostile clients), not_reading (a client stopped reading its answer for --idle-timeout), idle_timeout (keep-alive connections idle past --idle-timeout; a trickle is normal). Any limit, header_timeout or not_reading line: find the client by its address in the debug log ("closing an HTTP connection").',
            unit: 'ops',
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [g.target('sum by (instance, why) (rate(tradeops_exporter_http_connections_closed_total{%(selector)s}[$__rate_interval]))' % s, '{{instance}} {{why}}')],
          }),
        ],
      }),
  },
}
