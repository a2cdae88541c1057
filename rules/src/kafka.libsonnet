// Kafka: the cluster (reachable, brokers, leaderless and under-replicated
// partitions, OffsetFetch errors) at any hour, and the consumer groups: stopped,
// stalled, behind their time-lag objective, not draining or without members
// while lag grows, only while the group's calendar is in session past its
// warm-up; rewinds and data lost to retention at any hour.
//
// Group alerts are per (target, group), never per partition: a cluster may have
// hundreds of groups. Each group's objective and calendar come from the
// exporter (tradeops_kafka_consumer_group_lag_objective_seconds), so one rule
// serves every group.
local a = import '../../bundle/lib/alerts.libsonnet';

{
  _config+:: {
    thresholds+: {
      // A group this many times over its time-lag objective pages at once.
      kafkaLagCriticalFactor: 5,
    },
  },

  rules+:: {
    local cfg = $._config,
    local alert(o) = a.alert(cfg, o { area: 'kafka', dashboard: 'kafka' }),
    local groupAlert(o) = alert(o { vars: { target: 'target', group: 'group' } }),
    local w(d) = a.window(cfg, d),
    local factor = cfg.thresholds.kafkaLagCriticalFactor,

    // The per-group calendar gate (1 in session past the warm-up, else 0).
    local inSession = '(tradeops:kafka_consumer_group_in_session == 1)',
    // `(expr) * gate`: keeps the value, adds the group's `calendar`.
    local indent(expr) = std.join('\n', ['  ' + l for l in std.split(expr, '\n') if l != '']),
    local gated(expr) = '(\n' + indent(expr) + '\n)\n* on (target, group) group_left (calendar) ' + inSession + '\n',

    // Description fragments read at notification time (Go raw strings, so the
    // selector's quotes need no escaping).
    local perGroup(query) = 'printf `' + query + '` $labels.target $labels.group | query',
    local objective = '{{ with %s }}{{ . | first | value | humanizeDuration }}{{ end }}' %
                      perGroup('max(tradeops_kafka_consumer_group_lag_objective_seconds{%s, target=%%q, group=%%q})' % cfg.selector),
    // "1 partition", "3 partitions": the alert's value counts `noun`s.
    local count(noun) = '{{ $value | printf "%.0f" }} ' + noun + '{{ if ne $value 1.0 }}s{{ end }}',
    // The time lag is only a floor while its oldest unconsumed message predates
    // the exporter's samples: say "at least".
    local floor = '{{ with %s }}at least {{ end }}' %
                  perGroup('max(tradeops_kafka_consumer_topic_lag_seconds_lower_bound{%s, target=%%q, group=%%q}) == 1' % cfg.selector),
    local brokerAddress = '{{ with printf `max by (address) (tradeops_kafka_broker_info{%s, target=%%q, broker_id=%%q})` $labels.target $labels.broker_id | query }} ({{ . | first | label "address" }}){{ end }}' % cfg.selector,

    // Time lag over `k` times the group's objective, in session.
    local lagOver(k) = |||
      max by (target, group) (tradeops_kafka_consumer_group_max_lag_seconds{%(selector)s})
      > on (target, group) group_left (calendar)
        %(k)smax by (target, group, calendar) (tradeops_kafka_consumer_group_lag_objective_seconds{%(selector)s})
      and on (target, group, calendar) %(gate)s
    ||| % (cfg { k: if k == 1 then '' else a.num(k) + ' * ', gate: inSession }),

    kafka: {
      groups: [
        a.group('tradeops-kafka-cluster', [
          alert({
            name: 'KafkaClusterDown',
            severity: 'critical',
            expr: 'max by (target) (tradeops_up{%(selector)s, kind="kafka"}) == 0' % cfg,
            'for': '1m',
            summary: 'The exporter cannot read a Kafka cluster.',
            description: 'Every probe run of Kafka cluster {{ $labels.target }} has failed for 1 minute (no broker answers, or authentication fails): its consumer-group series are withdrawn, so no lag alert can fire for it.',
          }),
          alert({
            name: 'KafkaBrokerUnreachable',
            severity: 'critical',
            expr: |||
              min by (target, broker_id) (tradeops_kafka_broker_reachable{%(selector)s}) == 0
              and on (target) max by (target) (tradeops_up{%(selector)s, kind="kafka"}) == 1
            ||| % cfg,
            'for': '2m',
            summary: 'A Kafka broker does not answer the exporter.',
            description: 'Broker {{ $labels.broker_id }}' + brokerAddress + ' of Kafka cluster {{ $labels.target }} has failed requests for 2 minutes while the other brokers answer: the groups it coordinates and the partitions it leads are not read, so their lag alerts cannot fire.',
          }),
          alert({
            name: 'KafkaPartitionsOffline',
            severity: 'critical',
            expr: 'max by (target) (tradeops_kafka_partitions_offline{%(selector)s}) > 0' % cfg,
            'for': '1m',
            summary: 'Kafka partitions have no leader.',
            description: 'Kafka cluster {{ $labels.target }} has ' + count('partition') + ' without a leader for 1 minute: nothing can be produced to or consumed from them.',
          }),
          alert({
            name: 'KafkaPartitionsUnderReplicated',
            severity: 'warning',
            expr: 'max by (target) (tradeops_kafka_partitions_under_replicated{%(selector)s}) > 0' % cfg,
            'for': '10m',
            summary: 'Kafka partitions have fewer in-sync replicas than replicas.',
            description: 'Kafka cluster {{ $labels.target }} has had ' + count('under-replicated partition') + ' for 10 minutes: one more broker failure can take them offline or lose acknowledged messages.',
          }),
          alert({
            name: 'KafkaOffsetFetchErrors',
            severity: 'warning',
            expr: 'max by (target) (max_over_time(tradeops_kafka_offset_fetch_errors{%(selector)s}[%(w)s])) > 0' % (cfg { w: w('5m') }),
            'for': '10m',
            summary: "The exporter cannot read some consumer groups' committed offsets.",
            description: 'Kafka cluster {{ $labels.target }}: OffsetFetch errors kept recurring for 10 minutes (up to {{ $value | printf "%.0f" }} in one cycle). The lag of those groups or partitions is absent, not zero, so their lag alerts cannot fire.',
          }),
        ]),
        a.group('tradeops-kafka-consumers', [
          a.record(
            'tradeops:kafka_consumer_group_in_session',
            |||
              group by (target, group, calendar) (tradeops_kafka_consumer_group_lag_objective_seconds{%(selector)s})
              * on (calendar) group_left ()
              tradeops:calendar_in_session
            ||| % cfg
          ),
          groupAlert({
            name: 'KafkaConsumerGroupStopped',
            severity: 'critical',
            expr: gated(|||
              max by (target, group) (tradeops_kafka_consumer_group_lag_offsets{%(selector)s})
              and on (target, group)
              max by (target, group) (tradeops_kafka_consumer_group_status{%(selector)s, status="stop"}) == 1
            ||| % cfg),
            'for': '1m',
            summary: 'A consumer group has lag and nobody consuming.',
            description: 'Consumer group {{ $labels.group }} on {{ $labels.target }} has no members and no committed offset moved for a full status window, with {{ $value | humanize }} messages waiting; its calendar {{ $labels.calendar }} is in session.',
          }),
          groupAlert({
            name: 'KafkaConsumerGroupStalled',
            severity: 'critical',
            expr: gated(|||
              max by (target, group) (tradeops_kafka_consumer_group_partitions{%(selector)s, status="stall"})
              and on (target, group)
              max by (target, group) (tradeops_kafka_consumer_group_status{%(selector)s, status="stall"}) == 1
            ||| % cfg),
            'for': '1m',
            summary: 'A consumer group has members but makes no progress.',
            description: 'Consumer group {{ $labels.group }} on {{ $labels.target }} has members connected, but on ' + count('partition') + ' with lag the committed offset has not moved for a full status window (a stuck consumer); its calendar {{ $labels.calendar }} is in session.',
          }),
          groupAlert({
            name: 'KafkaConsumerGroupRewound',
            severity: 'warning',
            // Partitions, not the group status: a worse status (stall) on another
            // partition would hide the rewind.
            expr: 'max by (target, group) (tradeops_kafka_consumer_group_partitions{%(selector)s, status="rewind"}) > 0' % cfg,
            'for': '30s',
            summary: "A consumer group's committed offset went backwards.",
            description: 'Consumer group {{ $labels.group }} on {{ $labels.target }}: on ' + count('partition') + ' the committed offset went backwards within the status window (an offset reset or a replay); the group consumes those messages again.',
          }),
          groupAlert({
            name: 'KafkaConsumerLagOverObjective',
            severity: 'warning',
            expr: lagOver(1),
            'for': '2m',
            summary: 'A consumer group is behind its time-lag objective.',
            description: 'Consumer group {{ $labels.group }} on {{ $labels.target }} is ' + floor + '{{ $value | humanizeDuration }} behind, over its objective of ' + objective + ', for 2 minutes; its calendar {{ $labels.calendar }} is in session.',
          }),
          groupAlert({
            name: 'KafkaConsumerLagFarOverObjective',
            severity: 'critical',
            expr: lagOver(factor),
            'for': '2m',
            summary: 'A consumer group is far behind its time-lag objective.',
            description: 'Consumer group {{ $labels.group }} on {{ $labels.target }} is ' + floor + '{{ $value | humanizeDuration }} behind, over %(k)s times its objective of ' % { k: a.num(factor) } + objective + ', for 2 minutes; its calendar {{ $labels.calendar }} is in session.',
          }),
          groupAlert({
            name: 'KafkaConsumerLagSustained',
            severity: 'critical',
            expr: lagOver(1),
            'for': '15m',
            summary: 'A consumer group has stayed behind its time-lag objective.',
            description: 'Consumer group {{ $labels.group }} on {{ $labels.target }} has been over its objective of ' + objective + ' for 15 minutes in session and is ' + floor + '{{ $value | humanizeDuration }} behind; its calendar is {{ $labels.calendar }}.',
          }),
          groupAlert({
            name: 'KafkaConsumerNotDraining',
            severity: 'warning',
            expr: gated(|||
              sum by (target, group) (
                max by (target, group, topic) (
                  tradeops_kafka_consumer_topic_lag_offsets{%(selector)s} > 0
                  and tradeops_kafka_consumer_topic_draining{%(selector)s} == 0
                )
              )
            ||| % cfg),
            'for': '10m',
            summary: "A consumer group's lag is not shrinking.",
            description: 'Consumer group {{ $labels.group }} on {{ $labels.target }} has {{ $value | humanize }} messages of lag on topics where it consumed no faster than they were produced over the status window, for 10 minutes; its calendar {{ $labels.calendar }} is in session.',
          }),
          groupAlert({
            name: 'KafkaConsumerGroupNoMembers',
            severity: 'warning',
            expr: gated(|||
              max by (target, group) (tradeops_kafka_consumer_group_lag_offsets{%(selector)s}) > 0
              and on (target, group)
              max by (target, group) (delta(tradeops_kafka_consumer_group_lag_offsets{%(selector)s}[%(w)s])) > 0
              and on (target, group)
              max by (target, group) (tradeops_kafka_consumer_group_members{%(selector)s}) == 0
            ||| % (cfg { w: w('5m') })),
            'for': '2m',
            summary: 'A consumer group has no members while its lag grows.',
            description: 'Consumer group {{ $labels.group }} on {{ $labels.target }} has no members while its lag grew over 5 minutes, now {{ $value | humanize }} messages; its calendar {{ $labels.calendar }} is in session.',
          }),
          groupAlert({
            name: 'KafkaConsumerBehindLogStart',
            severity: 'critical',
            expr: |||
              sum by (target, group) (
                max by (target, group, topic) (tradeops_kafka_consumer_topic_partitions_behind_log_start{%(selector)s})
              ) > 0
            ||| % cfg,
            'for': '1m',
            summary: 'Retention deleted messages a consumer group never consumed.',
            description: 'Consumer group {{ $labels.group }} on {{ $labels.target }} has a committed offset below the log start on ' + count('partition') + ': retention deleted messages it never consumed, and it will skip them when it resumes.',
          }),
        ]),
      ],
    },
  },
}
