// Redis: whether each server answers and how fast, memory against maxmemory and
// evictions, clients against maxclients, replication and persistence (RDB/AOF),
// Sentinel quorum and failovers, Redis Cluster state, coverage and nodes,
// the platform's heartbeat keys against their maximum gap, stream consumer
// groups, and the canary write.
local g = import 'lib/grafana.libsonnet';

{
  grafanaDashboards+:: {
    redis:
      local cfg = $._config;
      local t = cfg.thresholds;
      local s = {
        selector: cfg.selector,
        vars: 'target=~"$target"',
        hb: 'target=~"$target", heartbeat=~"$heartbeat"',
      };
      // RedisRestarted warns for 15 minutes after a start.
      local restartedSeconds = 15 * 60;
      // RedisEvictingKeys warns above this many evictions in 10 minutes; as a
      // rate, with a floor so that "any eviction" is not the base colour.
      local evictionRate = std.max(t.redisEvictedKeysPer10m / 600, 0.0001);
      local exclude(names) = { id: 'organize', options: { excludeByName: { [n]: true for n in names } } };
      local column(name, props) = { matcher: { id: 'byName', options: name }, properties: props };
      g.dashboard(cfg, 'redis', {
        description: 'Redis: whether each server answers and how fast, memory and clients against their limits, evictions, replication and persistence, Sentinel quorum and failovers, Redis Cluster state and nodes, the heartbeat keys against their maximum gap, stream consumer groups and the canary write.',
        tags: ['redis'],
        variables: [
          g.queryVariable('target', 'Target', 'tradeops_up{%(selector)s, kind="redis"}' % s, 'target'),
          g.queryVariable('heartbeat', 'Heartbeat', 'tradeops_redis_heartbeat_max_gap_seconds{%(selector)s, target=~"$target"}' % s, 'heartbeat'),
        ],
        panels: [
          g.row('Reachability and latency'),
          g.stat({
            title: 'Probe up',
            description: "Whether the exporter's last probe run of each Redis server succeeded. Red: the server does not answer and its data series are withdrawn, so the panels below go empty for it; RedisDown pages after 1 minute. The reason (refused, timeout, auth, protocol) is in \"Probe errors by reason\".",
            unit: 'none',
            thresholds: g.thresholds([[null, 'red'], [1, 'green']]),
            mappings: g.boolMappings('down', 'up'),
            targets: [g.target('tradeops_up{%(selector)s, kind="redis", %(vars)s}' % s, '{{target}}', instant=true)],
          }),
          g.stat({
            title: 'Canary write',
            description: 'Whether the canary SET and GET-back succeeded on each server. Red while the server answers: it refuses writes (READONLY after a failover, OOM at maxmemory under noeviction, MISCONF after a failed save, NOPERM) or reads back another value; RedisCanaryFailing pages. Check the persistence and memory panels, and the exporter log for the error.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'red'], [1, 'green']]),
            mappings: g.boolMappings('failing', 'ok'),
            targets: [g.target('tradeops_redis_canary_success{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
          }),
          g.stat({
            title: 'Role',
            description: 'Whether each server is a primary or a replica now. A change is a failover: RedisRoleChanged warns for 15 minutes after it; check that writers follow the new primary (a canary failing with READONLY means they do not).',
            unit: 'none',
            thresholds: g.thresholds([[null, 'text']]),
            mappings: g.boolMappings('replica', 'primary', 'blue', 'green'),
            targets: [g.target('tradeops_redis_role_primary{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
          }),
          g.stat({
            title: 'Uptime',
            description: 'Time since each Redis server started. Amber for the first %d minutes after a start (RedisRestarted warns): its keys are gone unless persistence reloaded them and the cache is warming up; check the heartbeats and streams below.' % (restartedSeconds / 60),
            unit: 's',
            thresholds: g.thresholds([[null, 'orange'], [restartedSeconds, 'green']]),
            targets: [g.target('time() - tradeops_redis_start_time_seconds{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
          }),
          g.timeseries({
            title: 'PING and canary round trip',
            description: 'Round trip of a PING (the latency clients see) and of the canary SET+GET, per server. A rise on every server points at the network or the exporter host; on one server at that server (a slow command, a fork for a save, swapping). No canary line while the canary fails.',
            unit: 's',
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [
              g.target('tradeops_redis_ping_seconds{%(selector)s, %(vars)s}' % s, 'PING {{target}}'),
              g.target('tradeops_redis_canary_roundtrip_seconds{%(selector)s, %(vars)s}' % s, 'canary {{target}}'),
            ],
          }),
          g.timeseries({
            title: 'Probe errors by reason',
            description: 'Failed probe runs per second by server and reason. Any line is a server RedisDown is about: refused (nothing listening), timeout (hung or unreachable), auth (password or ACL: NOAUTH, NOPERM), protocol (not Redis on that port, reset), config (TLS files).',
            unit: 'ops',
            thresholds: g.rag(0.0001, 0.01),
            thresholdsStyle: 'off',
            targets: [g.target('sum by (target, reason) (rate(tradeops_probe_errors_total{%(selector)s, kind="redis", %(vars)s}[$__rate_interval]))' % s, '{{target}}: {{reason}}')],
          }),
          g.row('Memory and evictions'),
          g.stat({
            title: 'Memory used / maxmemory',
            description: 'Memory allocated by Redis as a share of its maxmemory. Amber from %g (RedisMemoryNearMax warns after 10 minutes), red at maxmemory: Redis evicts keys, or refuses writes with OOM under noeviction (the canary fails). Empty for a server without a maxmemory limit.' % t.redisMemoryRatio,
            unit: 'percentunit',
            decimals: 1,
            thresholds: g.rag(t.redisMemoryRatio, 1),
            targets: [g.target('tradeops_redis_memory_used_bytes{%(selector)s, %(vars)s} / (tradeops_redis_memory_max_bytes{%(selector)s, %(vars)s} > 0)' % s, '{{target}}', instant=true)],
            w: 4,
            h: 8,
          }),
          g.timeseries({
            title: 'Memory',
            description: 'Memory allocated by Redis, its resident set size and its maxmemory (dashed) per server. Used approaching the dashed line is what the memory alerts are about: find the growing keys or raise maxmemory. RSS far above used is fragmentation (memory the OS holds that Redis does not use).',
            unit: 'bytes',
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [
              g.target('tradeops_redis_memory_used_bytes{%(selector)s, %(vars)s}' % s, 'used {{target}}'),
              g.target('tradeops_redis_memory_rss_bytes{%(selector)s, %(vars)s}' % s, 'rss {{target}}'),
              g.target('tradeops_redis_memory_max_bytes{%(selector)s, %(vars)s} > 0' % s, 'maxmemory {{target}}'),
            ],
            overrides: [{
              matcher: { id: 'byRegexp', options: 'maxmemory .*' },
              properties: [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }],
            }],
            w: 10,
          }),
          g.timeseries({
            title: 'Evicted keys',
            description: 'Keys evicted per second to stay under maxmemory, per server. Above the line (more than %g keys in 10 minutes) RedisEvictingKeys warns: hot keys are dropped and reads fall through to the sources. Free memory or raise maxmemory; on a pure LRU cache at its limit this is expected.' % t.redisEvictedKeysPer10m,
            unit: 'ops',
            thresholds: g.thresholds([[null, 'green'], [evictionRate, 'orange']]),
            targets: [g.target('sum by (target) (rate(tradeops_redis_evicted_keys_total{%(selector)s, %(vars)s}[$__rate_interval]))' % s, '{{target}}')],
            w: 10,
          }),
          g.row('Clients and keyspace'),
          g.timeseries({
            title: 'Clients / maxclients',
            description: 'Open client connections as a share of maxclients, per server. Amber from %g (RedisClientsNearMax warns after 5 minutes), red at maxclients: new connections are rejected. A steady climb is a connection leak in a client; find it with CLIENT LIST.' % t.redisClientsRatio,
            unit: 'percentunit',
            thresholds: g.rag(t.redisClientsRatio, 1),
            targets: [g.target('tradeops_redis_connected_clients{%(selector)s, %(vars)s} / (tradeops_redis_max_clients{%(selector)s, %(vars)s} > 0)' % s, '{{target}}')],
            w: 8,
          }),
          g.timeseries({
            title: 'Connections accepted and rejected',
            description: 'Connections accepted and rejected per second, per server. Any rejected line means maxclients is reached (RedisRejectedConnections warns): components that reconnect cannot reach Redis. A burst of accepted connections is a client reconnecting in a loop.',
            unit: 'ops',
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [
              g.target('sum by (target) (rate(tradeops_redis_connections_received_total{%(selector)s, %(vars)s}[$__rate_interval]))' % s, 'accepted {{target}}'),
              g.target('sum by (target) (rate(tradeops_redis_rejected_connections_total{%(selector)s, %(vars)s}[$__rate_interval]))' % s, 'rejected {{target}}'),
            ],
            overrides: [{
              matcher: { id: 'byRegexp', options: 'rejected .*' },
              properties: [{ id: 'color', value: { mode: 'fixed', fixedColor: 'red' } }],
            }],
            w: 8,
          }),
          g.timeseries({
            title: 'Keyspace hit ratio',
            description: 'Share of key lookups that found their key, over 5 minutes, per server. A drop after a restart or during evictions means the cache is cold or losing hot keys and reads go to the sources; informational, no alert.',
            unit: 'percentunit',
            min: 0,
            max: 1,
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [g.target('tradeops:redis_keyspace_hit_ratio:rate5m{%(vars)s}' % s, '{{target}}')],
            w: 8,
          }),
          g.row('Replication and persistence'),
          g.stat({
            title: 'Replication link',
            description: 'On a replica: whether its link to the primary is up. Red: the replica serves stale data and is no safe failover target; RedisReplicationLinkDown warns after 2 minutes. Check the primary (it may be down or have failed over) and the network between them.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'red'], [1, 'green']]),
            mappings: g.boolMappings('down', 'up'),
            targets: [g.target('tradeops_redis_replication_link_up{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
          }),
          g.stat({
            title: 'Replicas lost (1h)',
            description: 'On a primary: how many fewer replicas are connected now than at most in the last hour. Amber from one (RedisReplicaLost warns): a failover now would lose data or find no replica to promote. Check the replica (its Replication link) and restart or resync it.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'green'], [1, 'orange']]),
            targets: [g.target('max_over_time(tradeops_redis_connected_replicas{%(selector)s, %(vars)s}[1h]) - tradeops_redis_connected_replicas{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
          }),
          g.stat({
            title: 'Last RDB save',
            description: 'Time since the last successful RDB snapshot of each server: what a restart without AOF would lose. Informational; when it keeps growing while "Persistence" shows the RDB save failed, Redis refuses writes with MISCONF (see there).',
            unit: 's',
            thresholds: g.thresholds([[null, 'text']]),
            targets: [g.target('time() - tradeops_redis_rdb_last_save_timestamp_seconds{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
            w: 4,
          }),
          g.stat({
            title: 'Persistence',
            description: 'Outcome of the last RDB background save and of the last AOF write and rewrite (AOF lines only where AOF is on). Red RDB save (RedisRdbSaveFailing) or AOF write (RedisAofWriteFailing) page: Redis refuses every write with MISCONF; check disk space and permissions of the data directory and the Redis log. Amber AOF rewrite (RedisAofRewriteFailing warns): the AOF keeps growing.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'red'], [1, 'green']]),
            mappings: g.boolMappings('failed', 'ok'),
            targets: [
              g.target('tradeops_redis_rdb_last_bgsave_ok{%(selector)s, %(vars)s}' % s, 'RDB save {{target}}', instant=true),
              g.target('tradeops_redis_aof_last_write_ok{%(selector)s, %(vars)s}' % s, 'AOF write {{target}}', instant=true),
              g.target('tradeops_redis_aof_last_rewrite_ok{%(selector)s, %(vars)s}' % s, 'AOF rewrite {{target}}', instant=true),
            ],
            overrides: [{
              matcher: { id: 'byRegexp', options: 'AOF rewrite .*' },
              properties: [{ id: 'mappings', value: g.boolMappings('failed', 'ok', 'orange') }],
            }],
            w: 8,
          }),
          g.timeseries({
            title: 'Replication',
            description: 'On a primary: bytes the furthest-behind replica is behind (lag) and replicas connected; on a replica: seconds since it last heard from its primary. A growing lag or silence means the replica falls behind and a failover to it would lose those writes; check the replica and the network.',
            unit: 'short',
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [
              g.target('tradeops_redis_replication_lag_bytes{%(selector)s, %(vars)s}' % s, 'lag bytes {{target}}'),
              g.target('tradeops_redis_connected_replicas{%(selector)s, %(vars)s}' % s, 'replicas {{target}}'),
              g.target('tradeops_redis_replication_last_io_seconds{%(selector)s, %(vars)s}' % s, 'last I/O s {{target}}'),
            ],
            overrides: [
              {
                matcher: { id: 'byRegexp', options: 'lag bytes .*' },
                properties: [{ id: 'unit', value: 'bytes' }],
              },
              {
                matcher: { id: 'byRegexp', options: '(replicas|last I/O s) .*' },
                properties: [{ id: 'custom.axisPlacement', value: 'right' }],
              },
            ],
            w: 24,
          }),
          g.row('Sentinel and Cluster'),
          g.stat({
            title: 'Sentinel quorum',
            description: 'For a target behind Sentinel: whether an answering Sentinel reports (CKQUORUM) that the quorum and the majority to authorise a failover are reachable. Amber: a failure of the master would not be failed over; RedisSentinelQuorumLost warns after 2 minutes. Restart the Sentinels that are down (see "Sentinels answering"). Empty for targets without Sentinel.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'orange'], [1, 'green']]),
            mappings: g.boolMappings('lost', 'ok', 'orange'),
            targets: [g.target('tradeops_redis_sentinel_quorum_ok{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
            w: 4,
            h: 8,
          }),
          g.timeseries({
            title: 'Sentinels answering',
            description: 'Per Sentinel target: Sentinels configured (dashed), those that answered the exporter, and those that see the master up. Answering below configured for 5 minutes: RedisSentinelUnreachable warns (a Sentinel is down, hung, or monitors another name). Seeing the master up dropping to 0: the master is down and a failover is due within down-after-milliseconds.',
            unit: 'short',
            min: 0,
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [
              g.target('tradeops_redis_sentinel_sentinels_reachable{%(selector)s, %(vars)s}' % s, 'answering {{target}}'),
              g.target('tradeops_redis_sentinel_sentinels_master_up{%(selector)s, %(vars)s}' % s, 'see master up {{target}}'),
              g.target('tradeops_redis_sentinel_sentinels{%(selector)s, %(vars)s}' % s, 'configured {{target}}'),
            ],
            overrides: [{
              matcher: { id: 'byRegexp', options: 'configured .*' },
              properties: [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }],
            }],
            w: 10,
          }),
          g.timeseries({
            title: 'Sentinel failovers followed',
            description: 'Moves of the master to another server that the exporter followed, per Sentinel target (RedisSentinelMasterChanged warns for 15 minutes after one). Check that writers followed (the canary above stays ok if they write where the exporter probes); the exporter log names the new address. Several moves in an hour: the master is flapping.',
            unit: 'short',
            min: 0,
            decimals: 0,
            thresholds: g.thresholds([[null, 'green'], [1, 'orange']]),
            targets: [g.target('sum by (target) (increase(tradeops_redis_sentinel_master_changes_total{%(selector)s, %(vars)s}[$__rate_interval]))' % s, '{{target}}')],
            w: 10,
          }),
          g.stat({
            title: 'Cluster state',
            description: 'For a Redis Cluster target: the cluster state reported by the node the exporter asked. Red (fail): every node answers CLUSTERDOWN and nothing can be read or written; RedisClusterStateFail pages after 1 minute. "Cluster nodes" names the failed node. Empty for targets that are not a cluster.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'red'], [1, 'green']]),
            mappings: g.boolMappings('fail', 'ok'),
            targets: [g.target('tradeops_redis_cluster_state_ok{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
            w: 4,
            h: 8,
          }),
          g.stat({
            title: 'Slot coverage',
            description: 'Share of the 16384 hash slots served by a healthy node, per cluster. Red below 100%: keys in the other slots fail; with the cluster still ok (cluster-require-full-coverage no) RedisClusterSlotsUncovered pages, otherwise the cluster is in fail. Bring the failed primary back or fail over to its replica.',
            unit: 'percentunit',
            decimals: 1,
            thresholds: g.thresholds([[null, 'red'], [1, 'green']]),
            targets: [g.target('tradeops_redis_cluster_slot_coverage_ratio{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
            w: 4,
            h: 8,
          }),
          g.table({
            title: 'Cluster nodes',
            description: 'Per cluster node (its node ID, as CLUSTER NODES shows it): primary or replica, slots served, replicas following a primary, the bus link seen from the node asked, and the failure flags. Red Failed: a majority of primaries flag it FAIL (RedisClusterNodeFailed warns); Suspected: the node asked flags it PFAIL. A primary with 0 replicas cannot be failed over.',
            thresholds: g.thresholds([[null, 'text']]),
            targets: [
              g.target('tradeops_redis_cluster_node_primary{%(selector)s, %(vars)s}' % s, ''),
              g.target('tradeops_redis_cluster_node_slots{%(selector)s, %(vars)s}' % s, ''),
              g.target('tradeops_redis_cluster_node_replicas{%(selector)s, %(vars)s}' % s, ''),
              g.target('tradeops_redis_cluster_node_link_up{%(selector)s, %(vars)s}' % s, ''),
              g.target('tradeops_redis_cluster_node_pfail{%(selector)s, %(vars)s}' % s, ''),
              g.target('tradeops_redis_cluster_node_fail{%(selector)s, %(vars)s}' % s, ''),
            ],
            transformations: [
              { id: 'merge', options: {} },
              exclude(['Time', 'job', 'instance', '__name__']) + {
                options+: {
                  renameByName: {
                    'Value #A': 'Primary',
                    'Value #B': 'Slots',
                    'Value #C': 'Replicas',
                    'Value #D': 'Link',
                    'Value #E': 'Suspected',
                    'Value #F': 'Failed',
                  },
                },
              },
            ],
            overrides: [
              column('Primary', [{ id: 'mappings', value: g.boolMappings('replica', 'primary', 'blue', 'green') }]),
              column('Link', [
                { id: 'mappings', value: g.boolMappings('disconnected', 'connected') },
                { id: 'custom.cellOptions', value: { type: 'color-text' } },
              ]),
              column('Suspected', [
                { id: 'mappings', value: g.boolMappings('no', 'PFAIL', 'green', 'orange') },
                { id: 'custom.cellOptions', value: { type: 'color-text' } },
              ]),
              column('Failed', [
                { id: 'mappings', value: g.boolMappings('no', 'FAIL', 'green', 'red') },
                { id: 'custom.cellOptions', value: { type: 'color-text' } },
              ]),
            ],
            w: 16,
          }),
          g.row('Heartbeats'),
          g.stat({
            title: 'Heartbeat age / max gap',
            description: "Age of each heartbeat key as a multiple of its configured maximum gap (tradeops_redis_heartbeat_max_gap_seconds). Amber from one gap: RedisHeartbeatStale warns (SlaHeartbeatMissed for the SLA packet's %s) while the key's calendar is in session; red from two gaps: SlaHeartbeatMissedTwice pages for those SLA heartbeats. The %s heartbeat pages instead after %d missed %d s cycles (SlaRiskHeartbeatMissed, team risk). When amber or red, the component writing the key has stopped: check it first, then this server." % [cfg.sla.heartbeats, cfg.sla.riskHeartbeat, cfg.sla.riskMissedCycles, cfg.sla.riskCycleSeconds],
            unit: 'none',
            decimals: 2,
            thresholds: g.rag(1, 2),
            targets: [g.target(|||
              (time() - tradeops_redis_heartbeat_timestamp_seconds{%(selector)s, %(hb)s})
              / on (job, instance, target, heartbeat) group_left (calendar)
              tradeops_redis_heartbeat_max_gap_seconds{%(selector)s, %(hb)s}
            ||| % s, '{{heartbeat}} ({{target}})', instant=true)],
            w: 12,
          }),
          g.stat({
            title: 'Heartbeat key present',
            description: 'Whether each configured heartbeat key exists and holds a timestamp. Red: the key is missing (its writer never started, or it expired or was overwritten), so it has no age to the left; RedisHeartbeatMissing warns while its calendar is in session. Check the writer and the key with GET.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'red'], [1, 'green']]),
            mappings: g.boolMappings('missing', 'present'),
            targets: [g.target('tradeops_redis_heartbeat_present{%(selector)s, %(hb)s}' % s, '{{heartbeat}} ({{target}})', instant=true)],
          }),
          g.stat({
            title: 'Heartbeat calendars in session',
            description: "Whether the calendar each heartbeat follows is in session (open and past its warm-up). The heartbeat alerts fire only in session: a stale heartbeat on a closed calendar is expected and pages nobody. When a calendar shows closed during trading hours, check the exporter's calendars: config.",
            unit: 'none',
            thresholds: g.thresholds([[null, 'text'], [1, 'green']]),
            mappings: g.boolMappings('closed', 'in session', 'text'),
            targets: [g.target('tradeops:calendar_in_session and on (calendar) tradeops_redis_heartbeat_max_gap_seconds{%(selector)s, %(hb)s}' % s, '{{calendar}}', instant=true)],
          }),
          g.timeseries({
            title: 'Heartbeat age',
            description: 'Seconds since each heartbeat key was last written, with its maximum gap dashed. A saw-tooth under the dashed line is healthy; a ramp through it means the writer stopped (the alerts fire once it stays above while in session). A line that vanishes is a missing key (see "Heartbeat key present").',
            unit: 's',
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [
              g.target('time() - tradeops_redis_heartbeat_timestamp_seconds{%(selector)s, %(hb)s}' % s, '{{heartbeat}} ({{target}})'),
              g.target('tradeops_redis_heartbeat_max_gap_seconds{%(selector)s, %(hb)s}' % s, 'max gap {{heartbeat}} ({{target}})'),
            ],
            overrides: [{
              matcher: { id: 'byRegexp', options: 'max gap .*' },
              properties: [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }],
            }],
            w: 24,
          }),
          g.row('Streams'),
          g.table({
            title: 'Stream consumer groups',
            description: 'Per stream and consumer group: consumers, entries not yet delivered (lag; needs Redis 7), delivered but not acknowledged (pending), stream length and the age of its last entry. Amber lag or pending: the group falls behind (see the graphs below). Zero consumers: the consumers died; restart them. An old last entry: the producer stopped.',
            thresholds: g.thresholds([[null, 'text']]),
            targets: [
              g.target('tradeops_redis_stream_group_consumers{%(selector)s, %(vars)s}' % s, ''),
              g.target('tradeops_redis_stream_group_lag{%(selector)s, %(vars)s}' % s, ''),
              g.target('tradeops_redis_stream_group_pending{%(selector)s, %(vars)s}' % s, ''),
              g.target(|||
                tradeops_redis_stream_group_consumers{%(selector)s, %(vars)s} * 0
                + on (job, instance, target, stream) group_left ()
                tradeops_redis_stream_length{%(selector)s, %(vars)s}
              ||| % s, ''),
              g.target(|||
                tradeops_redis_stream_group_consumers{%(selector)s, %(vars)s} * 0
                + on (job, instance, target, stream) group_left ()
                (time() - tradeops_redis_stream_last_entry_timestamp_seconds{%(selector)s, %(vars)s})
              ||| % s, ''),
            ],
            transformations: [
              { id: 'merge', options: {} },
              exclude(['Time', 'job', 'instance', '__name__']) + {
                options+: {
                  renameByName: {
                    'Value #A': 'Consumers',
                    'Value #B': 'Lag',
                    'Value #C': 'Pending',
                    'Value #D': 'Length',
                    'Value #E': 'Last entry age',
                  },
                },
              },
            ],
            overrides: [
              column('Consumers', [
                { id: 'thresholds', value: g.thresholds([[null, 'red'], [1, 'green']]) },
                { id: 'custom.cellOptions', value: { type: 'color-text' } },
              ]),
              column('Lag', [
                { id: 'thresholds', value: g.thresholds([[null, 'green'], [t.redisStreamGroupLag, 'orange']]) },
                { id: 'custom.cellOptions', value: { type: 'color-text' } },
              ]),
              column('Pending', [
                { id: 'thresholds', value: g.thresholds([[null, 'green'], [t.redisStreamGroupPending, 'orange']]) },
                { id: 'custom.cellOptions', value: { type: 'color-text' } },
              ]),
              column('Last entry age', [{ id: 'unit', value: 's' }]),
            ],
            w: 18,
          }),
          g.stat({
            title: 'Streams in session',
            description: "Whether each Redis server's calendar is in session: the stream alerts (RedisStreamGroupLagging, RedisStreamGroupPendingHigh) fire only then, so a backlog on a closed calendar pages nobody. When it shows closed during trading hours, check the target's calendar: in the exporter config.",
            unit: 'none',
            thresholds: g.thresholds([[null, 'text'], [1, 'green']]),
            mappings: g.boolMappings('closed', 'in session', 'text'),
            targets: [g.target('tradeops:target_in_session{kind="redis", %(vars)s}' % s, '{{target}} ({{calendar}})', instant=true)],
            w: 6,
            h: 8,
          }),
          g.timeseries({
            title: 'Stream group lag',
            description: 'Entries of each stream not yet delivered to each consumer group. Above the line (%d) for 5 minutes in session, RedisStreamGroupLagging warns: the consumers are too slow or too few; check their consumers count in the table and scale or restart them.' % t.redisStreamGroupLag,
            unit: 'short',
            thresholds: g.thresholds([[null, 'green'], [t.redisStreamGroupLag, 'orange']]),
            targets: [g.target('tradeops_redis_stream_group_lag{%(selector)s, %(vars)s}' % s, '{{stream}} / {{group}} ({{target}})')],
          }),
          g.timeseries({
            title: 'Stream group pending',
            description: 'Entries delivered to each consumer group but not acknowledged. Above the line (%d) for 5 minutes in session, RedisStreamGroupPendingHigh warns: consumers fail to process or died holding entries; check their logs and XPENDING, then XCLAIM or XAUTOCLAIM the entries of dead consumers.' % t.redisStreamGroupPending,
            unit: 'short',
            thresholds: g.thresholds([[null, 'green'], [t.redisStreamGroupPending, 'orange']]),
            targets: [g.target('tradeops_redis_stream_group_pending{%(selector)s, %(vars)s}' % s, '{{stream}} / {{group}} ({{target}})')],
          }),
        ],
      }),
  },
}
