// The bundle's dashboards, mixin-style: `grafanaDashboards` maps a key of
// `_config.dashboards` to its dashboard; `make dashboards` writes each to
// dashboards/build/<uid>.json.
(import 'overview.jsonnet')
+ (import 'exporter.jsonnet')
+ (import 'fix.jsonnet')
+ (import 'kafka.jsonnet')
+ (import 'redis.jsonnet')
+ (import 'timescale.jsonnet')
+ (import 'backups.jsonnet')
+ (import 'eventbus.jsonnet')
+ (import 'slo.jsonnet')
