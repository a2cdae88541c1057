// Drills: the shift-start paging drill (`python -m bundle.drill`, seed 004 §5:
// "trigger the PagerDuty heartbeat test") leaves a record per run, which the
// exporter's `drills` kind reads. One alert: no drill has succeeded within the
// target's max_interval (default 24 h, exported as a gauge) while the target's
// calendar is in session past its warm-up. The drill is run at shift start,
// around the open: the warm-up plus `for:` is the time it is given after the
// open, and nobody hears about a missed drill on a closed market.
//
// The alert's area is `exporter`: the drill proves the alerting pipeline, as the
// Watchdog does, and `drills` is not an area of the readiness status.
local a = import '../../bundle/lib/alerts.libsonnet';

{
  rules+:: {
    local cfg = $._config,
    local on = 'on (job, instance, target)',
    local series(metric) =
      'printf "' + metric + '{job=%q, instance=%q, target=%q}" $labels.job $labels.instance $labels.target',
    local valueOf(metric, fmt, otherwise='') =
      '{{ with ' + series(metric) + ' | query }}{{ . | first | value | ' + fmt + ' }}'
      + (if otherwise == '' then '' else '{{ else }}' + otherwise) + '{{ end }}',

    drills: {
      groups: [
        a.group('tradeops-drills', [
          a.alert(cfg, {
            name: 'PagingDrillOverdue',
            area: 'exporter',
            dashboard: 'exporter',
            vars: { target: 'target' },
            severity: 'warning',
            // Too old, or no successful drill at all; a target that is down has
            // its series withdrawn (ProbeTargetDown reports it).
            expr: |||
              (
                time() - tradeops_drill_last_success_timestamp_seconds{%(selector)s}
                > %(on)s tradeops_drill_max_interval_seconds{%(selector)s}
                or
                tradeops_drill_max_interval_seconds{%(selector)s}
                unless %(on)s tradeops_drill_last_success_timestamp_seconds{%(selector)s}
              )
              and on (target) %(gate)s
            ||| % (cfg { on: on, gate: a.targetInSession('drills') }),
            'for': '15m',
            summary: 'The shift-start paging drill has not succeeded in time.',
            description: 'Drills {{ $labels.target }}: no paging drill has succeeded within the allowed '
                         + valueOf('tradeops_drill_max_interval_seconds', 'humanizeDuration')
                         + ' (the last success: '
                         + valueOf('tradeops_drill_last_success_timestamp_seconds', 'humanizeTimestamp', 'none recorded')
                         + '). Nobody has proven this shift that a page reaches on-call: run the shift-start drill (python -m bundle.drill).',
          }),
        ]),
      ],
    },
  },
}
