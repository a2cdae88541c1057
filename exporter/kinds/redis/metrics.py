"""Redis families. ``target`` is the configured target name; ``node`` (Cluster
targets only) the cluster's node ID."""

from __future__ import annotations

from ...catalogue.base import family

T = "target"

INFO = family(
    "redis_info", "gauge", "Identity of the Redis server; always 1.", T, "version", "role", "mode"
)
PING = family("redis_ping_seconds", "gauge", "Round trip of a PING command.", T)
START_TIME = family(
    "redis_start_time_seconds", "gauge", "Unix time the Redis server started (from its uptime).", T
)
ROLE_PRIMARY = family(
    "redis_role_primary", "gauge", "1 if the server reports role master, 0 if replica.", T
)
CONNECTED_REPLICAS = family(
    "redis_connected_replicas", "gauge", "Replicas connected to this primary.", T
)
REPLICATION_LINK_UP = family(
    "redis_replication_link_up",
    "gauge",
    "On a replica: 1 if the link to its primary is up, else 0.",
    T,
)
REPLICATION_LAST_IO = family(
    "redis_replication_last_io_seconds",
    "gauge",
    "On a replica: seconds since the last interaction with its primary.",
    T,
)
REPLICATION_LAG = family(
    "redis_replication_lag_bytes",
    "gauge",
    "On a primary: replication offset of the furthest-behind replica behind the primary's.",
    T,
)
REPLICATION_OFFSET = family(
    "redis_replication_offset_bytes", "gauge", "The server's replication offset.", T
)
SYNC_IN_PROGRESS = family(
    "redis_replication_sync_in_progress",
    "gauge",
    "On a replica: 1 while a full sync from the primary is running.",
    T,
)
CLIENTS = family("redis_connected_clients", "gauge", "Client connections open.", T)
BLOCKED_CLIENTS = family("redis_blocked_clients", "gauge", "Clients blocked in a blocking call.", T)
MAX_CLIENTS = family("redis_max_clients", "gauge", "The server's maxclients setting.", T)
REJECTED_CONNECTIONS = family(
    "redis_rejected_connections_total", "counter", "Connections rejected (maxclients).", T
)
CONNECTIONS_RECEIVED = family(
    "redis_connections_received_total", "counter", "Connections accepted.", T
)
COMMANDS = family("redis_commands_processed_total", "counter", "Commands processed.", T)
MEMORY_USED = family("redis_memory_used_bytes", "gauge", "Memory allocated by Redis.", T)
MEMORY_RSS = family("redis_memory_rss_bytes", "gauge", "Resident set size of Redis.", T)
MEMORY_MAX = family(
    "redis_memory_max_bytes", "gauge", "The maxmemory setting (0 means no limit).", T
)
FRAGMENTATION = family(
    "redis_memory_fragmentation_ratio", "gauge", "RSS divided by memory used.", T
)
EVICTED = family("redis_evicted_keys_total", "counter", "Keys evicted for maxmemory.", T)
EXPIRED = family("redis_expired_keys_total", "counter", "Keys expired.", T)
HITS = family("redis_keyspace_hits_total", "counter", "Successful key lookups.", T)
MISSES = family("redis_keyspace_misses_total", "counter", "Failed key lookups.", T)
DB_KEYS = family("redis_db_keys", "gauge", "Keys per logical database.", T, "db")
DB_EXPIRING = family(
    "redis_db_keys_expiring", "gauge", "Keys with a TTL per logical database.", T, "db"
)
RDB_LAST_SAVE = family(
    "redis_rdb_last_save_timestamp_seconds",
    "gauge",
    "Unix time of the last successful RDB save.",
    T,
)
RDB_LAST_OK = family(
    "redis_rdb_last_bgsave_ok", "gauge", "1 if the last RDB background save succeeded.", T
)
RDB_CHANGES = family(
    "redis_rdb_changes_since_last_save", "gauge", "Writes since the last RDB save.", T
)
RDB_IN_PROGRESS = family(
    "redis_rdb_bgsave_in_progress", "gauge", "1 while an RDB background save runs.", T
)
AOF_ENABLED = family("redis_aof_enabled", "gauge", "1 if append-only file persistence is on.", T)
AOF_LAST_WRITE_OK = family(
    "redis_aof_last_write_ok", "gauge", "1 if the last AOF write succeeded (AOF on only).", T
)
AOF_LAST_REWRITE_OK = family(
    "redis_aof_last_rewrite_ok",
    "gauge",
    "1 if the last AOF rewrite succeeded (AOF on only).",
    T,
)
CANARY_ROUNDTRIP = family(
    "redis_canary_roundtrip_seconds",
    "gauge",
    "Time to SET the canary key (with its TTL) and GET it back.",
    T,
)
CANARY_OK = family(
    "redis_canary_success",
    "gauge",
    "1 if the canary SET succeeded and the value read back equals the one written, "
    "0 if not (including a SET refused by the server, e.g. read-only replica or OOM).",
    T,
)
HEARTBEAT_PRESENT = family(
    "redis_heartbeat_present",
    "gauge",
    "1 if the configured heartbeat key exists and holds a parseable timestamp, else 0.",
    T,
    "heartbeat",
)
HEARTBEAT_TIME = family(
    "redis_heartbeat_timestamp_seconds",
    "gauge",
    "Unix time held in the heartbeat key (absent when the key is missing or unparseable).",
    T,
    "heartbeat",
)
HEARTBEAT_MAX_GAP = family(
    "redis_heartbeat_max_gap_seconds",
    "gauge",
    "The heartbeat key's configured maximum gap between writes, under the calendar it follows.",
    T,
    "heartbeat",
    "calendar",
)
STREAM_LENGTH = family("redis_stream_length", "gauge", "Entries in the stream (XLEN).", T, "stream")
STREAM_LAST_ENTRY = family(
    "redis_stream_last_entry_timestamp_seconds",
    "gauge",
    "Unix time encoded in the stream's last generated entry ID.",
    T,
    "stream",
)
STREAM_GROUP_PENDING = family(
    "redis_stream_group_pending",
    "gauge",
    "Entries delivered to the consumer group but not acknowledged.",
    T,
    "stream",
    "group",
)
STREAM_GROUP_LAG = family(
    "redis_stream_group_lag",
    "gauge",
    "Entries not yet delivered to the consumer group (absent when Redis cannot tell).",
    T,
    "stream",
    "group",
)
STREAM_GROUP_CONSUMERS = family(
    "redis_stream_group_consumers",
    "gauge",
    "Consumers in the consumer group.",
    T,
    "stream",
    "group",
)

# Sentinel targets: the Sentinels' view of the master, and the failovers followed.
SENTINELS = family("redis_sentinel_sentinels", "gauge", "Sentinels configured for the target.", T)
SENTINELS_REACHABLE = family(
    "redis_sentinel_sentinels_reachable",
    "gauge",
    "Configured Sentinels that answered for the target's master in the last run.",
    T,
)
SENTINELS_MASTER_UP = family(
    "redis_sentinel_sentinels_master_up",
    "gauge",
    "Answering Sentinels that see the master up (not flagged subjectively or objectively down).",
    T,
)
SENTINEL_QUORUM = family(
    "redis_sentinel_quorum",
    "gauge",
    "Sentinels that must agree the master is down before a failover (its configured quorum).",
    T,
)
SENTINEL_QUORUM_OK = family(
    "redis_sentinel_quorum_ok",
    "gauge",
    "1 if an answering Sentinel reports (CKQUORUM) that the quorum and the majority needed to "
    "authorise a failover are reachable, else 0.",
    T,
)
SENTINEL_FAILOVER_IN_PROGRESS = family(
    "redis_sentinel_failover_in_progress",
    "gauge",
    "1 while an answering Sentinel reports a failover of the master in progress, else 0.",
    T,
)
SENTINEL_MASTER_CHANGES = family(
    "redis_sentinel_master_changes_total",
    "counter",
    "Changes of the master's address reported by the Sentinels (failovers followed) since the "
    "exporter started.",
    T,
)
SENTINEL_MASTER_CHANGED = family(
    "redis_sentinel_master_last_change_timestamp_seconds",
    "gauge",
    "Unix time the exporter last followed the master to a new address (absent before the first).",
    T,
)

# Cluster targets: CLUSTER INFO of the node that answered, and CLUSTER NODES per node.
# ``node`` is the cluster's node ID: bounded by the cluster's size and ``max_nodes``.
N = "node"
CLUSTER_STATE_OK = family(
    "redis_cluster_state_ok",
    "gauge",
    "1 if the cluster state is ok, 0 if fail (the cluster refuses queries: CLUSTERDOWN).",
    T,
)
CLUSTER_SLOTS_ASSIGNED = family(
    "redis_cluster_slots_assigned", "gauge", "Hash slots assigned to a node (of 16384).", T
)
CLUSTER_SLOTS_OK = family(
    "redis_cluster_slots_ok",
    "gauge",
    "Hash slots served by a node not flagged failing or possibly failing.",
    T,
)
CLUSTER_SLOTS_PFAIL = family(
    "redis_cluster_slots_pfail",
    "gauge",
    "Hash slots served by a node flagged possibly failing (PFAIL) by the node that answered.",
    T,
)
CLUSTER_SLOTS_FAIL = family(
    "redis_cluster_slots_fail",
    "gauge",
    "Hash slots served by a node flagged failing (FAIL: a majority of primaries agree).",
    T,
)
CLUSTER_SLOT_COVERAGE = family(
    "redis_cluster_slot_coverage_ratio",
    "gauge",
    "Share of the 16384 hash slots that are served by a healthy node (slots ok / 16384).",
    T,
)
CLUSTER_KNOWN_NODES = family(
    "redis_cluster_known_nodes", "gauge", "Nodes the cluster knows, replicas included.", T
)
CLUSTER_SIZE = family("redis_cluster_size", "gauge", "Primaries serving at least one hash slot.", T)
CLUSTER_CURRENT_EPOCH = family(
    "redis_cluster_current_epoch",
    "gauge",
    "The cluster's current epoch; it grows with every failover and configuration change.",
    T,
)
CLUSTER_NODES_UNREPORTED = family(
    "redis_cluster_nodes_unreported",
    "gauge",
    "Nodes left out of the per-node series because the cluster has more than max_nodes.",
    T,
)
CLUSTER_NODE_PRIMARY = family(
    "redis_cluster_node_primary", "gauge", "1 if the node is a primary, 0 if a replica.", T, N
)
CLUSTER_NODE_SLOTS = family(
    "redis_cluster_node_slots", "gauge", "Hash slots the node serves (0 for a replica).", T, N
)
CLUSTER_NODE_REPLICAS = family(
    "redis_cluster_node_replicas", "gauge", "On a primary: replicas that follow it.", T, N
)
CLUSTER_NODE_LINK_UP = family(
    "redis_cluster_node_link_up",
    "gauge",
    "1 if the cluster bus link from the node that answered to this node is connected, else 0.",
    T,
    N,
)
CLUSTER_NODE_PFAIL = family(
    "redis_cluster_node_pfail",
    "gauge",
    "1 if the node that answered flags the node possibly failing (PFAIL), else 0.",
    T,
    N,
)
CLUSTER_NODE_FAIL = family(
    "redis_cluster_node_fail",
    "gauge",
    "1 if the node is flagged failing (FAIL: a majority of primaries agree), else 0.",
    T,
    N,
)

FAMILIES = (
    INFO,
    PING,
    START_TIME,
    ROLE_PRIMARY,
    CONNECTED_REPLICAS,
    REPLICATION_LINK_UP,
    REPLICATION_LAST_IO,
    REPLICATION_LAG,
    REPLICATION_OFFSET,
    SYNC_IN_PROGRESS,
    CLIENTS,
    BLOCKED_CLIENTS,
    MAX_CLIENTS,
    REJECTED_CONNECTIONS,
    CONNECTIONS_RECEIVED,
    COMMANDS,
    MEMORY_USED,
    MEMORY_RSS,
    MEMORY_MAX,
    FRAGMENTATION,
    EVICTED,
    EXPIRED,
    HITS,
    MISSES,
    DB_KEYS,
    DB_EXPIRING,
    RDB_LAST_SAVE,
    RDB_LAST_OK,
    RDB_CHANGES,
    RDB_IN_PROGRESS,
    AOF_ENABLED,
    AOF_LAST_WRITE_OK,
    AOF_LAST_REWRITE_OK,
    CANARY_ROUNDTRIP,
    CANARY_OK,
    HEARTBEAT_PRESENT,
    HEARTBEAT_TIME,
    HEARTBEAT_MAX_GAP,
    STREAM_LENGTH,
    STREAM_LAST_ENTRY,
    STREAM_GROUP_PENDING,
    STREAM_GROUP_LAG,
    STREAM_GROUP_CONSUMERS,
    SENTINELS,
    SENTINELS_REACHABLE,
    SENTINELS_MASTER_UP,
    SENTINEL_QUORUM,
    SENTINEL_QUORUM_OK,
    SENTINEL_FAILOVER_IN_PROGRESS,
    SENTINEL_MASTER_CHANGES,
    SENTINEL_MASTER_CHANGED,
    CLUSTER_STATE_OK,
    CLUSTER_SLOTS_ASSIGNED,
    CLUSTER_SLOTS_OK,
    CLUSTER_SLOTS_PFAIL,
    CLUSTER_SLOTS_FAIL,
    CLUSTER_SLOT_COVERAGE,
    CLUSTER_KNOWN_NODES,
    CLUSTER_SIZE,
    CLUSTER_CURRENT_EPOCH,
    CLUSTER_NODES_UNREPORTED,
    CLUSTER_NODE_PRIMARY,
    CLUSTER_NODE_SLOTS,
    CLUSTER_NODE_REPLICAS,
    CLUSTER_NODE_LINK_UP,
    CLUSTER_NODE_PFAIL,
    CLUSTER_NODE_FAIL,
)
