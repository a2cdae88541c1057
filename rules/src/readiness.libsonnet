// Readiness: one red/amber/green status per area, per target and overall, from
// what is firing (0 ok, 1 degraded: a warning fires, 2 down: a critical fires).
// The overview dashboard shows these; info alerts and the Watchdog do not count.
local a = import '../../bundle/lib/alerts.libsonnet';

{
  rules+:: {
    local cfg = $._config,
    local firing(severity) = 'ALERTS{alertstate="firing", severity="%s", area!=""}' % severity,
    // Firing alerts that name a target; FIX alerts name it in `session`.
    local withTarget(severity) =
      local sel = firing(severity);
      'label_replace(%s, "target", "$1", "session", "(.+)") or %s' % [
        std.strReplace(sel, '}', ', session!=""}'),
        std.strReplace(sel, '}', ', target!=""}'),
      ],
    local zeroFor(area) = 'label_replace(vector(0), "area", "%s", "", "")' % area,

    readiness: {
      groups: [
        a.group('tradeops-readiness', [
          a.record(
            'tradeops:area_status',
            std.join('\nor\n', [
              'max by (area) (%s) * 2' % firing('critical'),
              'max by (area) (%s)' % firing('warning'),
            ] + [zeroFor(area) for area in cfg.areas]) + '\n'
          ),
          a.record(
            'tradeops:target_status',
            std.join('\nor\n', [
              'max by (area, target) (%s) * 2' % withTarget('critical'),
              'max by (area, target) (%s)' % withTarget('warning'),
              // every probed target is listed, 0 while nothing fires for it
              |||
                max by (area, target) (
                  label_replace(tradeops_up{%(selector)s}, "area", "$1", "kind", "([a-z]+)(_store)?")
                ) * 0
              ||| % cfg,
            ]) + '\n'
          ),
          a.record('tradeops:overall_status', 'max(tradeops:area_status)'),
        ]),
      ],
    },
  },
}
