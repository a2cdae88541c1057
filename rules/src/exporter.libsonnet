// The exporter's own health, the Watchdog, and the calendar gates every
// "should be flowing" alert of the other areas joins on.
local a = import '../../bundle/lib/alerts.libsonnet';

{
  rules+:: {
    local cfg = $._config,
    local alert(o) = a.alert(cfg, o { area: 'exporter', dashboard: 'exporter' }),
    local w(d) = a.window(cfg, d),

    exporter: {
      groups: [
        a.group('tradeops-calendar', [
          a.record(
            'tradeops:calendar_in_session',
            |||
              max by (calendar) (
                tradeops_calendar_open{%(selector)s}
                * on (job, instance, calendar)
                (
                  (time() - tradeops_calendar_session_open_timestamp_seconds{%(selector)s})
                  >= bool on (job, instance, calendar)
                  tradeops_calendar_warmup_seconds{%(selector)s}
                )
              )
            ||| % cfg
          ),
          // Open, warm-up or not: what "failing" alerts need on a venue's holidays.
          a.record(
            'tradeops:target_calendar_open',
            |||
              max by (kind, target, calendar) (tradeops_target_calendar_info{%(selector)s})
              * on (calendar) group_left ()
              max by (calendar) (tradeops_calendar_open{%(selector)s})
            ||| % cfg
          ),
          a.record(
            'tradeops:target_in_session',
            |||
              max by (kind, target, calendar) (tradeops_target_calendar_info{%(selector)s})
              * on (calendar) group_left ()
              tradeops:calendar_in_session
            ||| % cfg
          ),
        ]),
        a.group('tradeops-exporter', [
          {
            alert: 'Watchdog',
            expr: 'vector(1)',
            labels: { severity: 'none', area: 'exporter' },
            annotations: {
              summary: 'The alerting pipeline is alive.',
              description: 'Always firing. It reaches the dead-man switch; when it stops arriving, Prometheus, the rules or Alertmanager are broken.',
              runbook_url: a.runbookUrl(cfg, 'Watchdog'),
              dashboard_url: a.dashboardUrl(cfg, 'overview'),
            },
          },
          alert({
            name: 'ExporterAbsent',
            severity: 'critical',
            expr: 'up{%(selector)s} == 0 or absent(up{%(selector)s})' % cfg,
            'for': '1m',
            summary: 'Prometheus cannot scrape the tradeops exporter.',
            description: 'Scrape of {{ with $labels.instance }}{{ . }}{{ else }}the exporter job{{ end }} failing or absent for 1 minute: nothing the exporter watches can alert.',
            vars: {},
          }),
          alert({
            name: 'ProbeTargetDown',
            severity: 'warning',
            // Kinds with an area alert of their own (RedisDown, ...) are left to it.
            expr: 'tradeops_up{%(selector)s, kind!~"fix|redis|timescale|kafka|eventbus"} == 0' % cfg,
            'for': '5m',
            summary: 'A probe target keeps failing.',
            description: 'The {{ $labels.kind }} target {{ $labels.target }} has failed every probe run for 5 minutes; its data series are withdrawn.',
            vars: { kind: 'kind', target: 'target' },
          }),
          alert({
            name: 'ProbeErrorsFrequent',
            severity: 'warning',
            expr: |||
              sum by (kind, target, reason) (increase(tradeops_probe_errors_total{%(selector)s}[%(w)s])) >= 3
              and on (kind, target) max by (kind, target) (tradeops_up{%(selector)s}) == 1
            ||| % (cfg { w: w('15m') }),
            'for': '5m',
            summary: 'A target fails some of its probe runs.',
            description: '{{ $labels.kind }} target {{ $labels.target }}: {{ $value | printf "%.0f" }} runs failed with reason {{ $labels.reason }} in 15 minutes while it is up between them.',
            vars: { kind: 'kind', target: 'target' },
          }),
          alert({
            name: 'ProbeNearDeadline',
            severity: 'warning',
            expr: |||
              tradeops_probe_duration_seconds{%(selector)s}
              > on (job, instance, kind, target) %(ratio)s * tradeops_probe_timeout_seconds{%(selector)s}
            ||| % (cfg { ratio: a.num(cfg.thresholds.probeDeadlineRatio) }),
            'for': '10m',
            summary: 'Probe runs take most of their deadline.',
            description: '{{ $labels.kind }} target {{ $labels.target }}: the last run took {{ $value | humanizeDuration }}, over %(pct)s%% of its deadline, for 10 minutes.' % { pct: cfg.thresholds.probeDeadlineRatio * 100 },
            vars: { kind: 'kind', target: 'target' },
          }),
          alert({
            name: 'ConfigReloadFailed',
            severity: 'warning',
            expr: 'tradeops_exporter_config_last_reload_successful{%(selector)s} == 0' % cfg,
            'for': '1m',
            summary: 'The exporter rejected its configuration file.',
            description: 'The last configuration reload of {{ $labels.instance }} failed; it keeps probing with the previous configuration. The exporter log names the file, field and problem.',
            vars: {},
          }),
          alert({
            name: 'ProbeLoopRestarting',
            severity: 'warning',
            expr: 'increase(tradeops_exporter_loop_restarts_total{%(selector)s}[%(w)s]) > 0' % (cfg { w: w('15m') }),
            'for': '1m',
            summary: 'A probe loop crashed and was restarted.',
            description: 'The probe loop of {{ $labels.kind }} target {{ $labels.target }} crashed {{ $value | printf "%.0f" }} times in 15 minutes (an exporter bug: the log has the error).',
            vars: { kind: 'kind', target: 'target' },
          }),
        ]),
      ],
    },
  },
}
