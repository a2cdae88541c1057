// The one configuration of the monitoring bundle, shared by the rules and the
// dashboards. Adapt the bundle by overriding fields of `_config` (see
// docs/bundle.md); never edit the generated files.
{
  _config+:: {
    // Label matchers that select the exporter's series (every selector in every
    // rule carries them) and Prometheus' own `up` series for its scrape job.
    selector: 'job="tradeops"',

    // How often Prometheus scrapes the exporter and evaluates the rules. Every
    // `for:` is at least two scrape intervals, so one missed scrape never fires.
    scrapeInterval: '15s',
    evaluationInterval: '15s',

    // Multiplies every `for:` and every range the rules use (windows keep a floor
    // of four scrape intervals). 1 for production; the end-to-end tests build the
    // same bundle with a smaller scale.
    timeScale: 1,

    // Links in every alert's annotations.
    runbookBaseUrl: 'https://runbooks.tradeops.example/',
    dashboardBaseUrl: 'https://grafana.tradeops.example',

    // Per-alert `for:` overrides, by alert name, e.g. { RedisDown: '5m' }.
    forOverrides: {},

    // Dashboards: stable uids (alerts link to them; changing one breaks links).
    dashboards: {
      overview: { uid: 'tradeops-overview', title: 'Trading backbone: on-call overview' },
      exporter: { uid: 'tradeops-exporter', title: 'Trading backbone: exporter' },
      fix: { uid: 'tradeops-fix', title: 'Trading backbone: FIX sessions' },
      kafka: { uid: 'tradeops-kafka', title: 'Trading backbone: Kafka consumers' },
      redis: { uid: 'tradeops-redis', title: 'Trading backbone: Redis' },
      timescale: { uid: 'tradeops-timescale', title: 'Trading backbone: TimescaleDB / PostgreSQL' },
      backups: { uid: 'tradeops-backups', title: 'Trading backbone: backups' },
      eventbus: { uid: 'tradeops-eventbus', title: 'Trading backbone: event bus' },
      slo: { uid: 'tradeops-slo', title: 'Trading backbone: SLOs' },
    },

    // Default thresholds. What differs per target (freshness SLAs, heartbeat
    // gaps, time-lag objectives, RPOs, drill intervals) is exporter config,
    // exported as gauges, and is not here.
    thresholds: {
      probeDeadlineRatio: 0.8,  // a run taking this share of its deadline is close to it
      fixTestRequestRoundtripSeconds: 1,
      fixResendRequestsPer5m: 3,
      fixRejectsPer5m: 5,
      fixLogBacklogBytes: 64 * 1024 * 1024,
      redisMemoryRatio: 0.9,
      redisStreamGroupLag: 10000,
      redisStreamGroupPending: 10000,
      timescaleConnectionsRatio: 0.85,
      timescaleLongTransactionSeconds: 600,
      timescaleIdleInTransactionSeconds: 300,
      timescaleXidAge: 1000000000,
      timescaleStandbyLagSeconds: 60,
      timescaleReplicaLagSeconds: 60,
      timescaleSlotRetainedBytes: 10 * 1024 * 1024 * 1024,
      timescaleJobOverdueSeconds: 3600,
      backupWalArchiveStallSeconds: 3600,
      eventbusQueueRatio: 0.8,
      eventbusDispatchLagSeconds: 5,
      eventbusCanaryRoundtripSeconds: 1,
      eventbusIdleSeconds: 300,
    },

    // The SLA packet (seed 004, section 3).
    sla: {
      // Redis heartbeat keys (the `heartbeat` label) of the monitored components.
      heartbeats: 'ingestion|feature_store|execution',
      riskHeartbeat: 'risk',
      riskCycleSeconds: 20,  // the risk service's cycle; > 3 cycles missing pages
      orderLatencyP95Seconds: 0.12,
      orderLatencyMinOrders: 20,  // per 5 minutes, below which p95 is not judged
      positionDriftRatio: 0.005,
    },

    // Service-level objectives: the budget burns only while the relevant
    // calendar is in session; below minEvents good+bad samples per window
    // nothing pages.
    slos: {
      fixAvailability: { objective: 0.999, minEvents: 20 },
      ingestFreshness: { objective: 0.99, minEvents: 20 },
      consumerTimeLag: { objective: 0.99, minEvents: 20 },
    },

    // Areas for the readiness status (0 ok, 1 degraded, 2 down).
    areas: ['exporter', 'fix', 'kafka', 'redis', 'timescale', 'backups', 'eventbus', 'sla'],
  },
}
