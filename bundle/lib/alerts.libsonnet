// Builders for the bundle's rules: alerts with the bundle's labels and
// annotations, recording rules, groups, durations scaled by `timeScale`, and
// the trading-calendar gates.
local units = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
local get(o, k, default) = if std.objectHas(o, k) then o[k] else default;

{
  // '90s', '5m', '1h30m' -> seconds.
  seconds(d)::
    local parts = std.filter(function(p) p != '', std.split(std.strReplace(std.strReplace(std.strReplace(std.strReplace(std.strReplace(d, 'w', 'w '), 'd', 'd '), 'h', 'h '), 'm', 'm '), 's', 's '), ' '));
    std.foldl(function(acc, p) acc + std.parseInt(p[:std.length(p) - 1]) * units[p[std.length(p) - 1]], parts, 0),

  // seconds -> the shortest Prometheus duration ('1h30m', '45s').
  duration(n)::
    local s = std.max(1, std.floor(n + 0.5));
    local step(acc, u) =
      local q = std.floor(acc.rest / units[u]);
      if q > 0 then { rest: acc.rest - q * units[u], out: acc.out + std.toString(q) + u } else acc;
    std.foldl(step, ['w', 'd', 'h', 'm', 's'], { rest: s, out: '' }).out,

  // A number as PromQL text: integers in full, fractions to six significant digits.
  num(x):: if x == std.floor(x) then '%d' % x else '%.6g' % x,

  // A `for:` duration, scaled for time-scaled builds, never under two scrape
  // intervals (so one missed scrape never fires an alert).
  scaled(cfg, d)::
    self.duration(std.max(self.seconds(d) * cfg.timeScale, 2 * self.seconds(cfg.scrapeInterval))),

  // A range for rate()/increase()/*_over_time(): scaled, but never shorter
  // than four scrape intervals (so a window always holds enough samples).
  window(cfg, d)::
    self.duration(std.max(self.seconds(d) * cfg.timeScale, 4 * self.seconds(cfg.scrapeInterval))),

  // The link to the alert's runbook page (docs/runbooks/<name>.md).
  runbookUrl(cfg, name):: cfg.runbookBaseUrl + name + '.md',

  // The link to a dashboard of the bundle, with template variables from the
  // alert's labels, e.g. { target: 'target' } -> ?var-target={{ $labels.target }}.
  dashboardUrl(cfg, dashboard, vars={})::
    local uid = cfg.dashboards[dashboard].uid;
    local query = std.join('&', ['var-%s={{ $labels.%s }}' % [v, vars[v]] for v in std.objectFields(vars)]);
    cfg.dashboardBaseUrl + '/d/' + uid + (if query == '' then '' else '?' + query),

  // An alerting rule of the bundle.
  //   name: CamelCase; area: the `area` label; severity: critical|warning|info;
  //   expr: PromQL; for: a duration (overridable by name in cfg.forOverrides);
  //   summary: static text; description: templated text with the values;
  //   dashboard: a key of cfg.dashboards; vars: dashboard variables from labels.
  alert(cfg, o)::
    local forDuration = if std.objectHas(cfg.forOverrides, o.name) then cfg.forOverrides[o.name] else o['for'];
    {
      alert: o.name,
      expr: o.expr,
      'for': $.scaled(cfg, forDuration),
      labels: { severity: o.severity, area: o.area } + get(o, 'labels', {}),
      annotations: {
        summary: o.summary,
        description: o.description,
        runbook_url: $.runbookUrl(cfg, o.name),
        dashboard_url: $.dashboardUrl(cfg, get(o, 'dashboard', o.area), get(o, 'vars', { target: 'target' })),
      } + get(o, 'annotations', {}),
    },

  // A recording rule.
  record(name, expr, labels={})::
    { record: name, expr: expr } + (if labels == {} then {} else { labels: labels }),

  // A rule group.
  group(name, rules):: { name: name, rules: rules },

  // `and on(calendar) <this>`: the calendar is in session past its warm-up.
  inSession:: '(tradeops:calendar_in_session == 1)',

  // `and on(target) <this>`: the target's calendar is in session past its warm-up.
  targetInSession(kind):: '(tradeops:target_in_session{kind="%s"} == 1)' % kind,
}
