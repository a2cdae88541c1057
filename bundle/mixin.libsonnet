// The monitoring bundle: its config, every area's rules and the dashboards.
// `rules` maps an output file name (rules/<name>.yml) to its groups;
// `grafanaDashboards` maps a key of `_config.dashboards` to its dashboard; an
// area file may add defaults to `_config` (thresholds+: {...}).
(import 'config.libsonnet')
+ (import '../rules/src/exporter.libsonnet')
+ (import '../rules/src/fix.libsonnet')
+ (import '../rules/src/kafka.libsonnet')
+ (import '../rules/src/redis.libsonnet')
+ (import '../rules/src/timescale.libsonnet')
+ (import '../rules/src/backups.libsonnet')
+ (import '../rules/src/eventbus.libsonnet')
+ (import '../rules/src/drills.libsonnet')
+ (import '../rules/src/sla.libsonnet')
+ (import '../rules/src/slo.libsonnet')
+ (import '../rules/src/readiness.libsonnet')
+ (import '../dashboards/mixin.libsonnet')
