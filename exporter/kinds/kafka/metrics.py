"""Kafka families. ``target`` is the configured cluster name; ``group``,
``topic`` and ``partition`` come from the cluster (filtered by the target's
allow/deny regexes, so their number is bounded by configuration)."""

from __future__ import annotations

from ...catalogue.base import family

T = "target"
G = "group"
TP = "topic"
P = "partition"

# --- cluster -----------------------------------------------------------------
BROKERS = family("kafka_brokers", "gauge", "Brokers listed in the cluster metadata.", T)
BROKER_INFO = family(
    "kafka_broker_info",
    "gauge",
    "One series per broker in the metadata, with its advertised address; always 1.",
    T,
    "broker_id",
    "address",
    "rack",
)
BROKER_REACHABLE = family(
    "kafka_broker_reachable",
    "gauge",
    "1 per broker in the metadata that answered every request of the last cycle, 0 when one "
    "failed (connection error, timeout, error code for the whole request): its groups and "
    "partitions were not read that cycle.",
    T,
    "broker_id",
)
CONTROLLER = family(
    "kafka_controller_id", "gauge", "Broker id of the active controller (-1 if none).", T
)
TOPICS = family("kafka_topics", "gauge", "Topics in the metadata that pass the topic filter.", T)
PARTITIONS = family(
    "kafka_partitions", "gauge", "Partitions of the topics that pass the topic filter.", T
)
OFFLINE = family(
    "kafka_partitions_offline",
    "gauge",
    "Partitions (of filtered topics) without a leader in the metadata.",
    T,
)
UNDER_REPLICATED = family(
    "kafka_partitions_under_replicated",
    "gauge",
    "Partitions (of filtered topics) whose in-sync replicas are fewer than their replicas.",
    T,
)
GROUPS = family(
    "kafka_consumer_groups", "gauge", "Consumer groups listed that pass the group filter.", T
)
FETCH_ERRORS = family(
    "kafka_offset_fetch_errors",
    "gauge",
    "OffsetFetch errors in the last cycle: one per group whose request failed as a whole, "
    "one per partition answered with an error code (the lag they hide is absent, not zero).",
    T,
)
REQUESTS = family(
    "kafka_requests_per_cycle",
    "gauge",
    "Broker requests the last cycle made; grows with brokers and groups, not partitions.",
    T,
)
REQUESTS_TOTAL = family(
    "kafka_requests_total",
    "counter",
    "Broker requests made by the probe since its state was created.",
    T,
)

# --- topics ------------------------------------------------------------------
TOPIC_PARTITIONS = family("kafka_topic_partitions", "gauge", "Partitions of the topic.", T, TP)
TOPIC_END = family(
    "kafka_topic_end_offset",
    "gauge",
    "Sum of the topic's partition log-end offsets; its rate() is the produce rate.",
    T,
    TP,
)
TOPIC_RETAINED = family(
    "kafka_topic_retained_messages",
    "gauge",
    "Sum over partitions of log-end minus log-start offset: messages the brokers retain.",
    T,
    TP,
)
PARTITION_END = family(
    "kafka_partition_end_offset",
    "gauge",
    "Log-end offset of the partition (the offset the next message will get).",
    T,
    TP,
    P,
)
PARTITION_START = family(
    "kafka_partition_start_offset",
    "gauge",
    "Log-start offset of the partition (the oldest retained message).",
    T,
    TP,
    P,
)

# --- group x topic x partition (granularity: partition) ----------------------
COMMITTED = family(
    "kafka_consumer_committed_offset",
    "gauge",
    "Offset the group committed for the partition (absent when it never committed).",
    T,
    G,
    TP,
    P,
)
LAG = family(
    "kafka_consumer_lag_offsets",
    "gauge",
    "Log-end minus committed offset, at least 0 (absent when the group never committed).",
    T,
    G,
    TP,
    P,
)
LAG_SECONDS = family(
    "kafka_consumer_lag_seconds",
    "gauge",
    "Estimated age of the oldest unconsumed message, interpolated from the exporter's "
    "log-end samples; a floor when older than the samples (see ..._lag_seconds_lower_bound).",
    T,
    G,
    TP,
    P,
)

# --- group x topic -----------------------------------------------------------
TOPIC_LAG = family(
    "kafka_consumer_topic_lag_offsets",
    "gauge",
    "Offset lag of the group summed over the topic's committed partitions (absent in a "
    "cycle where one of them could not be read).",
    T,
    G,
    TP,
)
TOPIC_COMMITTED = family(
    "kafka_consumer_topic_committed_offset",
    "gauge",
    "Sum of the group's committed offsets over the topic's committed partitions; its rate() "
    "is the consume rate (absent in a cycle where one of them could not be read).",
    T,
    G,
    TP,
)
TOPIC_EXPIRED = family(
    "kafka_consumer_topic_partitions_behind_log_start",
    "gauge",
    "Committed partitions whose committed offset is below the log-start offset: retention "
    "deleted messages the group never consumed.",
    T,
    G,
    TP,
)
TOPIC_LAG_SECONDS = family(
    "kafka_consumer_topic_max_lag_seconds",
    "gauge",
    "Largest estimated time lag of the group over the topic's partitions.",
    T,
    G,
    TP,
)
TOPIC_LOWER_BOUND = family(
    "kafka_consumer_topic_lag_seconds_lower_bound",
    "gauge",
    "1 when the topic's max time lag is only a floor: the oldest unconsumed message predates "
    "the exporter's samples.",
    T,
    G,
    TP,
)
DRAIN = family(
    "kafka_consumer_topic_drain_seconds",
    "gauge",
    "Estimated time to consume the topic's lag at the current net rate (consume minus "
    "produce) over the status window; absent when not draining.",
    T,
    G,
    TP,
)
DRAINING = family(
    "kafka_consumer_topic_draining",
    "gauge",
    "1 when the group's lag on the topic is zero or shrinking over the status window, 0 when "
    "it is not shrinking.",
    T,
    G,
    TP,
)

# --- group -------------------------------------------------------------------
GROUP_STATE = family(
    "kafka_consumer_group_state",
    "gauge",
    "1 for the group's current coordinator state (stable, preparing_rebalance, "
    "completing_rebalance, empty, dead, unknown), 0 for the others.",
    T,
    G,
    "state",
)
GROUP_MEMBERS = family(
    "kafka_consumer_group_members", "gauge", "Members of the group (consumers connected).", T, G
)
GROUP_LAG_OBJECTIVE = family(
    "kafka_consumer_group_lag_objective_seconds",
    "gauge",
    "The group's configured time-lag objective, under the calendar its consumers follow.",
    T,
    G,
    "calendar",
)
GROUP_STATUS = family(
    "kafka_consumer_group_status",
    "gauge",
    "1 for the group's worst partition status over the window (ok, warn: lag growing, rewind: "
    "offset went back, stall: offset stuck with lag and members present, stop: offset stuck "
    "with lag and no members), 0 for the others.",
    T,
    G,
    "status",
)
GROUP_PARTITIONS_STATUS = family(
    "kafka_consumer_group_partitions",
    "gauge",
    "Committed partitions of the group read this cycle, by status (ok, warn, rewind, stall, stop).",
    T,
    G,
    "status",
)
GROUP_LAG = family(
    "kafka_consumer_group_lag_offsets",
    "gauge",
    "Offset lag of the group summed over its committed partitions read this cycle.",
    T,
    G,
)
GROUP_LAG_SECONDS = family(
    "kafka_consumer_group_max_lag_seconds",
    "gauge",
    "Largest estimated time lag of the group over all its partitions.",
    T,
    G,
)
GROUP_ADVANCED = family(
    "kafka_consumer_group_offset_advanced_timestamp_seconds",
    "gauge",
    "Unix time any committed offset of the group was last seen to advance (or first seen, "
    "if it has not moved since the exporter started).",
    T,
    G,
)

FAMILIES = (
    BROKERS,
    BROKER_INFO,
    BROKER_REACHABLE,
    CONTROLLER,
    TOPICS,
    PARTITIONS,
    OFFLINE,
    UNDER_REPLICATED,
    GROUPS,
    FETCH_ERRORS,
    REQUESTS,
    REQUESTS_TOTAL,
    TOPIC_PARTITIONS,
    TOPIC_END,
    TOPIC_RETAINED,
    PARTITION_END,
    PARTITION_START,
    COMMITTED,
    LAG,
    LAG_SECONDS,
    TOPIC_LAG,
    TOPIC_COMMITTED,
    TOPIC_EXPIRED,
    TOPIC_LAG_SECONDS,
    TOPIC_LOWER_BOUND,
    DRAIN,
    DRAINING,
    GROUP_STATE,
    GROUP_MEMBERS,
    GROUP_LAG_OBJECTIVE,
    GROUP_STATUS,
    GROUP_PARTITIONS_STATUS,
    GROUP_LAG,
    GROUP_LAG_SECONDS,
    GROUP_ADVANCED,
)
