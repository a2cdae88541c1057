// A small builder library for the bundle's Grafana dashboards, in the spirit of
// grafonnet (which cannot be installed from our package sources). Every panel
// reads the `datasource` template variable, carries a title, a description
// (what it shows and what to do when it is red), a unit and thresholds; the
// layout helper assigns ids and grid positions.
local get(o, k, default) = if std.objectHas(o, k) then o[k] else default;

{
  // The datasource every panel, target and query variable reads.
  datasource:: { type: 'prometheus', uid: '${datasource}' },

  // Colours of the red/amber/green status.
  colors:: { green: 'green', amber: 'orange', red: 'red', neutral: 'text', blue: 'blue' },

  // Threshold steps: [[null, 'green'], [0.8, 'orange'], [1, 'red']].
  thresholds(steps):: {
    mode: 'absolute',
    steps: [{ value: s[0], color: s[1] } for s in steps],
  },

  // Green below `amber`, amber from `amber`, red from `red` (higher is worse).
  rag(amber, red):: $.thresholds([[null, 'green'], [amber, 'orange'], [red, 'red']]),

  // Red below `red`, amber below `amber`, green from `amber` (lower is worse).
  ragLow(red, amber):: $.thresholds([[null, 'red'], [red, 'orange'], [amber, 'green']]),

  // The readiness status: 0 ok (green), 1 degraded (amber), 2 down (red).
  statusThresholds:: $.rag(1, 2),
  statusMappings:: [{
    type: 'value',
    options: {
      '0': { text: 'OK', color: 'green', index: 0 },
      '1': { text: 'DEGRADED', color: 'orange', index: 1 },
      '2': { text: 'DOWN', color: 'red', index: 2 },
    },
  }],

  // A 0/1 gauge shown as words: 0 -> `zero`, 1 -> `one`.
  boolMappings(zero, one, zeroColor='red', oneColor='green'):: [{
    type: 'value',
    options: {
      '0': { text: zero, color: zeroColor, index: 0 },
      '1': { text: one, color: oneColor, index: 1 },
    },
  }],

  // A query of a panel. `instant` for stats and tables that show the present.
  target(expr, legendFormat='__auto', refId='A', instant=false, format='time_series'):: {
    datasource: $.datasource,
    expr: expr,
    legendFormat: legendFormat,
    refId: refId,
    range: !instant,
    instant: instant,
    format: format,
  },

  // A link from a panel (or a field) to a dashboard of the bundle, by uid.
  dashboardLink(cfg, key, title=null, query=''):: {
    title: if title == null then cfg.dashboards[key].title else title,
    url: '/d/' + cfg.dashboards[key].uid + (if query == '' then '' else '?' + query),
  },

  // A panel. o: { title, description, unit, targets, thresholds, mappings?,
  // links?, fieldLinks?, options?, custom?, decimals?, min?, max?, w?, h?,
  // transformations?, overrides? }.
  panel(type, o):: {
    type: type,
    title: o.title,
    description: o.description,
    datasource: $.datasource,
    targets: [
      t { refId: std.char(std.codepoint('A') + i) }
      for i in std.range(0, std.length(o.targets) - 1)
      for t in [o.targets[i]]
    ],
    links: get(o, 'links', []),
    fieldConfig: {
      defaults: {
                  unit: o.unit,
                  thresholds: o.thresholds,
                  mappings: get(o, 'mappings', []),
                  links: get(o, 'fieldLinks', []),
                  color: { mode: get(o, 'colorMode', 'thresholds') },
                  custom: get(o, 'custom', {}),
                } + (if std.objectHas(o, 'decimals') then { decimals: o.decimals } else {})
                + (if std.objectHas(o, 'min') then { min: o.min } else {})
                + (if std.objectHas(o, 'max') then { max: o.max } else {}),
      overrides: get(o, 'overrides', []),
    },
    options: get(o, 'options', {}),
    transformations: get(o, 'transformations', []),
    gridPos: { w: get(o, 'w', 6), h: get(o, 'h', 4) },
  },

  // A single value per series, coloured by its thresholds.
  stat(o):: $.panel('stat', o {
    options: {
      reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      colorMode: 'background',
      graphMode: 'none',
      justifyMode: 'auto',
      orientation: 'auto',
      textMode: 'auto',
      wideLayout: true,
      showPercentChange: false,
    } + get(o, 'options', {}),
  }),

  // Series over time; the thresholds are drawn as lines (or areas).
  timeseries(o):: $.panel('timeseries', o {
    colorMode: 'palette-classic',
    custom: {
      drawStyle: 'line',
      lineWidth: 1,
      fillOpacity: 10,
      showPoints: 'never',
      spanNulls: false,
      thresholdsStyle: { mode: get(o, 'thresholdsStyle', 'line') },
    },
    options: {
      legend: { displayMode: 'table', placement: 'bottom', showLegend: true, calcs: ['lastNotNull', 'max'] },
      tooltip: { mode: 'multi', sort: 'desc' },
    } + get(o, 'options', {}),
    h: get(o, 'h', 8),
    w: get(o, 'w', 12),
  }),

  // A table of an instant query (format table); it has no unit: the cells are
  // labels and values of differing kinds, so `unit` is left 'none'.
  table(o):: $.panel('table', o {
    unit: get(o, 'unit', 'none'),
    targets: [t { format: 'table', instant: true, range: false } for t in o.targets],
    options: { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'], countRows: false } } + get(o, 'options', {}),
    h: get(o, 'h', 8),
    w: get(o, 'w', 24),
  }),

  // States over time, one band per series, coloured by mappings and thresholds.
  stateTimeline(o):: $.panel('state-timeline', o {
    colorMode: 'thresholds',
    custom: { fillOpacity: 80, lineWidth: 0 },
    options: {
      mergeValues: true,
      showValue: 'never',
      alignValue: 'left',
      rowHeight: 0.9,
      legend: { displayMode: 'list', placement: 'bottom', showLegend: true },
      tooltip: { mode: 'single', sort: 'none' },
    } + get(o, 'options', {}),
    h: get(o, 'h', 8),
    w: get(o, 'w', 24),
  }),

  // A row: a heading across the dashboard.
  row(title):: { type: 'row', title: title, collapsed: false, panels: [], gridPos: { w: 24, h: 1 } },

  // The datasource template variable every panel reads.
  datasourceVariable:: {
    type: 'datasource',
    name: 'datasource',
    label: 'Data source',
    query: 'prometheus',
    current: {},
    hide: 0,
    refresh: 1,
    regex: '',
    options: [],
    skipUrlSync: false,
  },

  // A query variable from `label_values(<selector>, <label>)`.
  queryVariable(name, label, selector, labelName, multi=true, includeAll=true):: {
    local q = 'label_values(%s, %s)' % [selector, labelName],
    type: 'query',
    name: name,
    label: label,
    datasource: $.datasource,
    query: { query: q, refId: 'PrometheusVariableQueryEditor-VariableQuery', qryType: 1 },
    definition: q,
    current: {},
    hide: 0,
    refresh: 2,
    regex: '',
    sort: 1,
    multi: multi,
    includeAll: includeAll,
    allValue: '.*',
    options: [],
    skipUrlSync: false,
  },

  // Grid positions and ids: panels flow left to right in their given width and
  // height, wrapping at 24 columns; a row starts a new line across the grid.
  layout(panels)::
    local step(acc, p) =
      local w = p.gridPos.w;
      local h = p.gridPos.h;
      local isRow = p.type == 'row';
      local wrap = isRow || acc.x + w > 24;
      local x = if wrap then 0 else acc.x;
      local y = if wrap then acc.y + acc.rowH else acc.y;
      {
        x: if isRow then 0 else x + w,
        y: if isRow then y + 1 else y,
        rowH: if isRow then 0 else (if wrap then h else std.max(acc.rowH, h)),
        out: acc.out + [p { id: std.length(acc.out) + 1, gridPos: { x: x, y: y, w: w, h: h } }],
      };
    std.foldl(step, panels, { x: 0, y: 0, rowH: 0, out: [] }).out,

  // A dashboard of the bundle: uid and title from cfg.dashboards[key]; links to
  // every dashboard tagged `tradeops` (so dashboards added later appear) and to
  // the overview.
  dashboard(cfg, key, o):: {
    uid: cfg.dashboards[key].uid,
    title: cfg.dashboards[key].title,
    description: o.description,
    tags: ['tradeops'] + get(o, 'tags', []),
    timezone: 'utc',
    editable: true,
    graphTooltip: 1,
    fiscalYearStartMonth: 0,
    liveNow: false,
    schemaVersion: 39,
    version: 1,
    weekStart: '',
    refresh: get(o, 'refresh', '30s'),
    time: { from: get(o, 'from', 'now-6h'), to: 'now' },
    timepicker: { refresh_intervals: ['15s', '30s', '1m', '5m', '15m'] },
    annotations: {
      list: [{
        builtIn: 1,
        datasource: { type: 'grafana', uid: '-- Grafana --' },
        enable: true,
        hide: true,
        iconColor: 'rgba(0, 211, 255, 1)',
        name: 'Annotations & Alerts',
        type: 'dashboard',
      }],
    },
    links: [
      {
        title: 'Trading backbone',
        type: 'dashboards',
        tags: ['tradeops'],
        asDropdown: true,
        includeVars: false,
        keepTime: true,
        targetBlank: false,
        icon: 'external link',
        tooltip: 'Every dashboard of the bundle',
        url: '',
      },
    ] + (if key == 'overview' then [] else [{
           title: cfg.dashboards.overview.title,
           type: 'link',
           url: '/d/' + cfg.dashboards.overview.uid,
           tags: [],
           asDropdown: false,
           includeVars: false,
           keepTime: true,
           targetBlank: false,
           icon: 'dashboard',
           tooltip: 'The on-call overview',
         }]),
    templating: { list: [$.datasourceVariable] + get(o, 'variables', []) },
    panels: $.layout(o.panels),
  },
}
