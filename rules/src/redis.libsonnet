// Redis: the server answering, replication, memory and evictions, persistence,
// connections, Sentinel failovers and quorum, Redis Cluster state, coverage and
// nodes, the canary write, the platform's heartbeat keys and stream
// consumer groups. "Down / failing" alerts page at any hour; heartbeats and
// stream groups are gated on the calendar (an idle market writes nothing).
local a = import '../../bundle/lib/alerts.libsonnet';

{
  _config+:: {
    thresholds+: {
      redisClientsRatio: 0.9,  // share of maxclients open
      redisEvictedKeysPer10m: 0,  // keys evicted in 10 minutes above which it warns
    },
  },

  rules+:: {
    local cfg = $._config,
    local t = cfg.thresholds,
    local alert(o) = a.alert(cfg, o { area: 'redis', dashboard: 'redis', vars: { target: 'target' } }),
    local w(d) = a.window(cfg, d),
    // The SLA packet's heartbeats have the SLA area's rules (warn on the first
    // miss, page after two): the generic heartbeat alerts leave them alone.
    local notSla = 'heartbeat!~"%s|%s"' % [cfg.sla.heartbeats, cfg.sla.riskHeartbeat],
    local c = cfg {
      notSla: notSla,
      inSession: a.inSession,
      targetInSession: a.targetInSession('redis'),
    },

    redis: {
      groups: [
        a.group('tradeops-redis', [
          a.record(
            'tradeops:redis_keyspace_hit_ratio:rate5m',
            |||
              rate(tradeops_redis_keyspace_hits_total{%(selector)s}[%(w)s])
              /
              (
                rate(tradeops_redis_keyspace_hits_total{%(selector)s}[%(w)s])
                + rate(tradeops_redis_keyspace_misses_total{%(selector)s}[%(w)s])
                > 0
              )
            ||| % (c { w: w('5m') })
          ),
          alert({
            name: 'RedisDown',
            severity: 'critical',
            expr: 'tradeops_up{%(selector)s, kind="redis"} == 0' % c,
            'for': '1m',
            summary: 'A Redis server does not answer.',
            description: 'Redis {{ $labels.target }} has failed every probe run for 1 minute: the platform cannot reach it and its data series are withdrawn. The reason is in tradeops_probe_errors_total and the exporter log.',
          }),
          alert({
            name: 'RedisReplicationLinkDown',
            severity: 'warning',
            expr: 'tradeops_redis_replication_link_up{%(selector)s} == 0' % c,
            'for': '2m',
            summary: 'A Redis replica is not following its primary.',
            description: 'Replica {{ $labels.target }} has had no link to its primary for 2 minutes: it serves stale data and is not a safe failover target.',
          }),
          alert({
            name: 'RedisReplicaLost',
            severity: 'warning',
            expr: |||
              tradeops_redis_connected_replicas{%(selector)s}
              < max_over_time(tradeops_redis_connected_replicas{%(selector)s}[%(w)s])
            ||| % (c { w: w('1h') }),
            'for': '2m',
            summary: 'A Redis primary lost a replica.',
            description: 'Primary {{ $labels.target }} has fewer replicas connected than in the last hour (now {{ $value | printf "%.0f" }}): a failover now would lose data or find no replica to promote.',
          }),
          alert({
            name: 'RedisRoleChanged',
            severity: 'warning',
            expr: |||
              tradeops_redis_role_primary{%(selector)s}
              and changes(tradeops_redis_role_primary{%(selector)s}[%(w)s]) > 0
            ||| % (c { w: w('15m') }),
            'for': '30s',
            summary: 'A Redis server changed role (failover).',
            description: 'Redis {{ $labels.target }} changed role in the last 15 minutes and is now {{ if eq $value 1.0 }}a primary{{ else }}a replica{{ end }}: check that writers follow the new primary.',
          }),
          alert({
            name: 'RedisRestarted',
            severity: 'warning',
            expr: 'time() - tradeops_redis_start_time_seconds{%(selector)s} < %(s)s' % (c { s: a.num(a.seconds(w('15m'))) }),
            'for': '30s',
            summary: 'A Redis server restarted.',
            description: 'Redis {{ $labels.target }} started {{ $value | humanizeDuration }} ago: its keys are gone unless persistence reloaded them, and the cache is warming up.',
          }),
          alert({
            name: 'RedisMemoryNearMax',
            severity: 'warning',
            expr: |||
              tradeops_redis_memory_used_bytes{%(selector)s}
              / (tradeops_redis_memory_max_bytes{%(selector)s} > 0)
              > %(ratio)s
            ||| % (c { ratio: a.num(t.redisMemoryRatio) }),
            'for': '10m',
            summary: 'A Redis server is close to its maxmemory.',
            description: 'Redis {{ $labels.target }} has used {{ $value | humanizePercentage }} of its maxmemory for 10 minutes: next it evicts keys, or refuses writes with OOM under noeviction.',
          }),
          alert({
            name: 'RedisEvictingKeys',
            severity: 'warning',
            expr: 'increase(tradeops_redis_evicted_keys_total{%(selector)s}[%(w)s]) > %(n)s' % (c { w: w('10m'), n: a.num(t.redisEvictedKeysPer10m) }),
            'for': '1m',
            summary: 'A Redis server evicts keys for maxmemory.',
            description: 'Redis {{ $labels.target }} evicted {{ $value | printf "%.0f" }} keys in 10 minutes to stay under maxmemory: hot keys are dropped and reads fall through to the sources.',
          }),
          alert({
            name: 'RedisRdbSaveFailing',
            severity: 'critical',
            expr: 'tradeops_redis_rdb_last_bgsave_ok{%(selector)s} == 0' % c,
            'for': '1m',
            summary: 'Redis cannot write its RDB snapshot.',
            description: 'The last RDB background save of {{ $labels.target }} failed: under stop-writes-on-bgsave-error (the default) Redis refuses every write with MISCONF until a save succeeds.',
          }),
          alert({
            name: 'RedisAofWriteFailing',
            severity: 'critical',
            expr: 'tradeops_redis_aof_last_write_ok{%(selector)s} == 0' % c,
            'for': '1m',
            summary: 'Redis cannot write its append-only file.',
            description: 'The last AOF write of {{ $labels.target }} failed: Redis refuses writes with MISCONF until an AOF write succeeds, and recent writes may not be durable.',
          }),
          alert({
            name: 'RedisAofRewriteFailing',
            severity: 'warning',
            expr: 'tradeops_redis_aof_last_rewrite_ok{%(selector)s} == 0' % c,
            'for': '1m',
            summary: 'Redis cannot rewrite its append-only file.',
            description: 'The last AOF rewrite of {{ $labels.target }} failed: the append-only file keeps growing and a restart takes longer to load it.',
          }),
          alert({
            name: 'RedisRejectedConnections',
            severity: 'warning',
            expr: 'increase(tradeops_redis_rejected_connections_total{%(selector)s}[%(w)s]) > 0' % (c { w: w('5m') }),
            'for': '1m',
            summary: 'Redis rejects client connections at maxclients.',
            description: 'Redis {{ $labels.target }} rejected {{ $value | printf "%.0f" }} connections in 5 minutes (maxclients reached): platform components that reconnect cannot reach the cache.',
          }),
          alert({
            name: 'RedisClientsNearMax',
            severity: 'warning',
            expr: |||
              tradeops_redis_connected_clients{%(selector)s}
              / (tradeops_redis_max_clients{%(selector)s} > 0)
              > %(ratio)s
            ||| % (c { ratio: a.num(t.redisClientsRatio) }),
            'for': '5m',
            summary: 'Redis client connections are close to maxclients.',
            description: 'Redis {{ $labels.target }} has used {{ $value | humanizePercentage }} of maxclients for 5 minutes: new connections are rejected once it is full (a connection leak, or a client fleet grown past the limit).',
          }),
        ]),
        a.group('tradeops-redis-ha', [
          alert({
            name: 'RedisSentinelMasterChanged',
            severity: 'warning',
            expr: 'increase(tradeops_redis_sentinel_master_changes_total{%(selector)s}[%(w)s]) > 0' % (c { w: w('15m') }),
            'for': '30s',
            summary: 'Sentinel failed a Redis master over to another server.',
            description: 'The Sentinels of {{ $labels.target }} moved its master to another server (moves in the last 15 minutes: {{ $value | printf "%.0f" }}); the exporter follows it and logs the new address. Check that writers followed too, and why the old master failed.',
          }),
          alert({
            name: 'RedisSentinelQuorumLost',
            severity: 'warning',
            expr: 'tradeops_redis_sentinel_quorum_ok{%(selector)s} == 0' % c,
            'for': '2m',
            summary: 'Redis Sentinel could not fail the master over.',
            description: 'No Sentinel of {{ $labels.target }} that answers can reach the quorum and the majority needed to authorise a failover (CKQUORUM) for 2 minutes: if the master fails now, nothing promotes a replica and Redis stays down.',
          }),
          alert({
            name: 'RedisSentinelUnreachable',
            severity: 'warning',
            expr: |||
              tradeops_redis_sentinel_sentinels_reachable{%(selector)s}
              < tradeops_redis_sentinel_sentinels{%(selector)s}
            ||| % c,
            'for': '5m',
            summary: 'A Redis Sentinel does not answer.',
            description: 'Only {{ $value | printf "%.0f" }} of the configured Sentinels of {{ $labels.target }} have answered for 5 minutes: the group has less margin before it loses its quorum, and clients that list the silent Sentinel first wait on it.',
          }),
          alert({
            name: 'RedisClusterStateFail',
            severity: 'critical',
            expr: 'tradeops_redis_cluster_state_ok{%(selector)s} == 0' % c,
            'for': '1m',
            summary: 'A Redis Cluster is in state fail and refuses queries.',
            description: 'Redis Cluster {{ $labels.target }} has reported cluster_state fail for 1 minute: its nodes answer CLUSTERDOWN to every query (hash slots without a reachable primary, or a minority partition). tradeops_redis_cluster_node_fail names the failed node.',
          }),
          alert({
            name: 'RedisClusterSlotsUncovered',
            severity: 'critical',
            expr: |||
              tradeops_redis_cluster_slot_coverage_ratio{%(selector)s} < 1
              and on (job, instance, target)
              tradeops_redis_cluster_state_ok{%(selector)s} == 1
            ||| % c,
            'for': '1m',
            summary: 'Hash slots of a Redis Cluster have no healthy node.',
            description: 'Redis Cluster {{ $labels.target }} has served only {{ $value | humanizePercentage }} of its hash slots from a healthy node for 1 minute while it still says ok (cluster-require-full-coverage no): keys in the other slots cannot be read or written.',
          }),
          alert({
            name: 'RedisClusterNodeFailed',
            severity: 'warning',
            expr: 'tradeops_redis_cluster_node_fail{%(selector)s} == 1' % c,
            'for': '1m',
            summary: 'A Redis Cluster node is flagged failing.',
            description: 'Node {{ $labels.node }} of Redis Cluster {{ $labels.target }} has been flagged FAIL by a majority of primaries for 1 minute: a primary was failed over (or its slots are down), a replica no longer protects its primary.',
          }),
        ]),
        a.group('tradeops-redis-keys', [
          alert({
            name: 'RedisCanaryFailing',
            severity: 'critical',
            expr: 'tradeops_redis_canary_success{%(selector)s} == 0' % c,
            'for': '1m',
            summary: 'The Redis canary write and read-back fails.',
            description: 'The canary SET/GET on {{ $labels.target }} has failed for 1 minute while the server answers: it refuses writes (READONLY after a failover, OOM, MISCONF, NOPERM) or reads back another value. The exporter log names the error.',
          }),
          alert({
            name: 'RedisHeartbeatStale',
            severity: 'warning',
            expr: |||
              (
                time() - tradeops_redis_heartbeat_timestamp_seconds{%(selector)s, %(notSla)s}
              )
              > on (job, instance, target, heartbeat) group_left (calendar)
              tradeops_redis_heartbeat_max_gap_seconds{%(selector)s}
              and on (calendar) %(inSession)s
            ||| % c,
            'for': '1m',
            summary: 'A heartbeat key in Redis is not being refreshed.',
            description: 'Heartbeat {{ $labels.heartbeat }} on {{ $labels.target }} was last written {{ $value | humanizeDuration }} ago, longer than its maximum gap, while calendar {{ $labels.calendar }} is in session: its writer has stopped.',
          }),
          alert({
            name: 'RedisHeartbeatMissing',
            severity: 'warning',
            expr: |||
              tradeops_redis_heartbeat_present{%(selector)s, %(notSla)s} == 0
              and on (job, instance, target, heartbeat)
              (
                tradeops_redis_heartbeat_max_gap_seconds{%(selector)s}
                and on (calendar) %(inSession)s
              )
            ||| % c,
            'for': '1m',
            summary: 'A heartbeat key is missing from Redis.',
            description: 'Heartbeat key {{ $labels.heartbeat }} on {{ $labels.target }} does not exist or holds no timestamp while its calendar is in session: its writer never started, or the key expired or was overwritten.',
          }),
          alert({
            name: 'RedisStreamGroupLagging',
            severity: 'warning',
            expr: |||
              tradeops_redis_stream_group_lag{%(selector)s} > %(n)s
              and on (target) %(targetInSession)s
            ||| % (c { n: a.num(t.redisStreamGroupLag) }),
            'for': '5m',
            summary: 'A Redis stream consumer group falls behind.',
            description: 'Consumer group {{ $labels.group }} of stream {{ $labels.stream }} on {{ $labels.target }} has had {{ $value | printf "%.0f" }} entries not yet delivered for 5 minutes, in session.',
          }),
          alert({
            name: 'RedisStreamGroupPendingHigh',
            severity: 'warning',
            expr: |||
              tradeops_redis_stream_group_pending{%(selector)s} > %(n)s
              and on (target) %(targetInSession)s
            ||| % (c { n: a.num(t.redisStreamGroupPending) }),
            'for': '5m',
            summary: 'A Redis stream consumer group does not acknowledge entries.',
            description: 'Consumer group {{ $labels.group }} of stream {{ $labels.stream }} on {{ $labels.target }} has had {{ $value | printf "%.0f" }} entries delivered but not acknowledged for 5 minutes, in session: consumers fail or died holding them.',
          }),
        ]),
      ],
    },
  },
}
