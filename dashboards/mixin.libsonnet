// The bundle's dashboards, mixin-style: `grafanaDashboards` maps a key of
// `_config.dashboards` to its dashboard; `make dashboards` writes each to
// dashboards/build/<uid>.json. Area dashboards join here as they are built.
(import 'overview.jsonnet')
+ (import 'exporter.jsonnet')
