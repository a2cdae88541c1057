// Kafka: the cluster (reachable, brokers, controller, leaderless and
// under-replicated partitions, OffsetFetch errors) and its consumer groups
// (status, offset and time lag against each group's objective, time to drain,
// members, progress, retention losses), per target (cluster) and group.
local g = import 'lib/grafana.libsonnet';

{
  grafanaDashboards+:: {
    kafka:
      local cfg = $._config;
      local t = cfg.thresholds;
      local factor = t.kafkaLagCriticalFactor;
      local s = {
        selector: cfg.selector,
        cluster: 'target=~"$target"',
        vars: 'target=~"$target", group=~"$group"',
      };
      local dashed(re) = {
        matcher: { id: 'byRegexp', options: re },
        properties: [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }],
      };
      // The group's worst partition status as a number: 0 ok, 1 warn (lag
      // growing), 2 rewind, 3 stall (members, no progress), 4 stop (no members,
      // no progress); the status series is one-hot.
      local statusExpr = |||
        max by (target, group) (
          tradeops_kafka_consumer_group_status{%(selector)s, %(vars)s, status="ok"} * 0
          or tradeops_kafka_consumer_group_status{%(selector)s, %(vars)s, status="warn"}
          or tradeops_kafka_consumer_group_status{%(selector)s, %(vars)s, status="rewind"} * 2
          or tradeops_kafka_consumer_group_status{%(selector)s, %(vars)s, status="stall"} * 3
          or tradeops_kafka_consumer_group_status{%(selector)s, %(vars)s, status="stop"} * 4
        )
      ||| % s;
      local statusThresholds = g.thresholds([[null, 'green'], [1, 'yellow'], [2, 'orange'], [3, 'red']]);
      local statusMappings = [{
        type: 'value',
        options: {
          '0': { text: 'OK', color: 'green', index: 0 },
          '1': { text: 'WARN (lag growing)', color: 'yellow', index: 1 },
          '2': { text: 'REWIND', color: 'orange', index: 2 },
          '3': { text: 'STALL', color: 'red', index: 3 },
          '4': { text: 'STOP', color: 'red', index: 4 },
        },
      }];
      // The coordinator state as a number (the state series is one-hot).
      local stateExpr = |||
        max by (target, group) (
          tradeops_kafka_consumer_group_state{%(selector)s, %(vars)s, state="stable"} * 0
          or tradeops_kafka_consumer_group_state{%(selector)s, %(vars)s, state="preparing_rebalance"}
          or tradeops_kafka_consumer_group_state{%(selector)s, %(vars)s, state="completing_rebalance"} * 2
          or tradeops_kafka_consumer_group_state{%(selector)s, %(vars)s, state="empty"} * 3
          or tradeops_kafka_consumer_group_state{%(selector)s, %(vars)s, state="dead"} * 4
          or tradeops_kafka_consumer_group_state{%(selector)s, %(vars)s, state="unknown"} * 5
        )
      ||| % s;
      local stateMappings = [{
        type: 'value',
        options: {
          '0': { text: 'stable', color: 'green', index: 0 },
          '1': { text: 'preparing rebalance', color: 'orange', index: 1 },
          '2': { text: 'completing rebalance', color: 'orange', index: 2 },
          '3': { text: 'empty', color: 'text', index: 3 },
          '4': { text: 'dead', color: 'red', index: 4 },
          '5': { text: 'unknown', color: 'text', index: 5 },
        },
      }];
      local lagRatio = |||
        max by (target, group) (tradeops_kafka_consumer_group_max_lag_seconds{%(selector)s, %(vars)s})
        / on (target, group)
        max by (target, group) (tradeops_kafka_consumer_group_lag_objective_seconds{%(selector)s, %(vars)s})
      ||| % s;
      // A per-group count, or 0 per cluster when no group has any (so a
      // healthy cluster shows green rather than no data).
      local orZero(expr) = |||
        %s
        or on (target)
        max by (target) (tradeops_up{%s, kind="kafka", %s}) * 0
      ||| % [expr, s.selector, s.cluster];
      // A column of the groups table: its header, unit, thresholds, mappings.
      local column(name, unit, thresholds, mappings=[], cell='color-text') = {
        matcher: { id: 'byName', options: name },
        properties: [
          { id: 'unit', value: unit },
          { id: 'thresholds', value: thresholds },
          { id: 'mappings', value: mappings },
          { id: 'custom.cellOptions', value: { type: cell } },
        ],
      };
      local text = g.thresholds([[null, 'text']]);
      g.dashboard(cfg, 'kafka', {
        description: 'Kafka clusters and their consumer groups: is a pipeline behind (status, offset and time lag against its objective), is it recovering (draining, time to drain), and why (members, coordinator state, brokers, partitions).',
        tags: ['kafka'],
        variables: [
          g.queryVariable('target', 'Cluster', 'tradeops_up{%(selector)s, kind="kafka"}' % s, 'target'),
          g.queryVariable('group', 'Group', 'tradeops_kafka_consumer_group_lag_objective_seconds{%(selector)s, %(cluster)s}' % s, 'group'),
        ],
        panels: [
          g.row('Cluster'),
          g.stat({
            title: 'Cluster up',
            description: "Whether the exporter's last run against each cluster succeeded. Red: no broker answered (or authentication failed): KafkaClusterDown pages after 1 minute, and every group series below is withdrawn, so no lag alert can fire. Check the brokers and the exporter log.",
            unit: 'none',
            thresholds: g.thresholds([[null, 'red'], [1, 'green']]),
            mappings: g.boolMappings('down', 'up'),
            targets: [g.target('max by (target) (tradeops_up{%(selector)s, kind="kafka", %(cluster)s})' % s, '{{target}}', instant=true)],
            w: 4,
          }),
          g.stat({
            title: 'Brokers unreachable',
            description: 'Brokers in the metadata that failed a request of the last cycle. Red from one: KafkaBrokerUnreachable pages after 2 minutes; the groups it coordinates and the partitions it leads are not read, so their lag is absent (not zero). See "Broker reachability" for which one.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'green'], [1, 'red']]),
            targets: [g.target('sum by (target) (1 - tradeops_kafka_broker_reachable{%(selector)s, %(cluster)s})' % s, '{{target}}', instant=true)],
            w: 4,
          }),
          g.stat({
            title: 'Active controller',
            description: 'Broker id of the active controller. Red when there is none (-1): partition leadership cannot change, so a broker failure leaves its partitions offline. Check the controller quorum (KRaft or ZooKeeper).',
            unit: 'none',
            decimals: 0,
            thresholds: g.thresholds([[null, 'red'], [0, 'green']]),
            mappings: [{ type: 'value', options: { '-1': { text: 'none', color: 'red', index: 0 } } }],
            targets: [g.target('tradeops_kafka_controller_id{%(selector)s, %(cluster)s}' % s, '{{target}}', instant=true)],
            w: 4,
          }),
          g.stat({
            title: 'Partitions offline',
            description: "Partitions (of the filtered topics) without a leader. Red from one: KafkaPartitionsOffline pages after 1 minute; nothing can be produced to or consumed from them, and their groups' lag is absent. Bring the broker holding their replicas back.",
            unit: 'none',
            thresholds: g.thresholds([[null, 'green'], [1, 'red']]),
            targets: [g.target('max by (target) (tradeops_kafka_partitions_offline{%(selector)s, %(cluster)s})' % s, '{{target}}', instant=true)],
            w: 4,
          }),
          g.stat({
            title: 'Under-replicated partitions',
            description: 'Partitions whose in-sync replicas are fewer than their replicas. Amber from one: KafkaPartitionsUnderReplicated warns after 10 minutes; one more broker failure can take them offline or lose acknowledged messages. Usually a broker down or slow to replicate.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'green'], [1, 'orange']]),
            targets: [g.target('max by (target) (tradeops_kafka_partitions_under_replicated{%(selector)s, %(cluster)s})' % s, '{{target}}', instant=true)],
            w: 4,
          }),
          g.stat({
            title: 'OffsetFetch errors',
            description: 'OffsetFetch errors in the last cycle (one per group whose request failed, one per partition answered with an error code). Amber from one: KafkaOffsetFetchErrors warns when they keep recurring for 10 minutes; the lag of those groups is absent, not zero, so their lag alerts cannot fire. Often a coordinator loading or moving.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'green'], [1, 'orange']]),
            targets: [g.target('max by (target) (tradeops_kafka_offset_fetch_errors{%(selector)s, %(cluster)s})' % s, '{{target}}', instant=true)],
            w: 4,
          }),
          g.stat({
            title: 'Cluster size',
            description: 'Brokers in the metadata, topics and partitions that pass the topic filter, and consumer groups that pass the group filter. Informational: a broker count below the expected one is a broker gone from the cluster; a group count of zero means the group filter keeps none.',
            unit: 'none',
            decimals: 0,
            thresholds: text,
            targets: [
              g.target('max by (target) (tradeops_kafka_brokers{%(selector)s, %(cluster)s})' % s, '{{target}} brokers', instant=true),
              g.target('max by (target) (tradeops_kafka_topics{%(selector)s, %(cluster)s})' % s, '{{target}} topics', instant=true),
              g.target('max by (target) (tradeops_kafka_partitions{%(selector)s, %(cluster)s})' % s, '{{target}} partitions', instant=true),
              g.target('max by (target) (tradeops_kafka_consumer_groups{%(selector)s, %(cluster)s})' % s, '{{target}} groups', instant=true),
            ],
            w: 8,
            h: 6,
          }),
          g.stateTimeline({
            title: 'Broker reachability',
            description: 'Whether each broker (with its advertised address) answered every request of each cycle. Red bands: KafkaBrokerUnreachable pages after 2 minutes of them; check that broker (process, host, network, certificates) first.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'red'], [1, 'green']]),
            mappings: g.boolMappings('unreachable', 'reachable'),
            targets: [g.target(|||
              max by (target, broker_id) (tradeops_kafka_broker_reachable{%(selector)s, %(cluster)s})
              * on (target, broker_id) group_left (address)
              max by (target, broker_id, address) (tradeops_kafka_broker_info{%(selector)s, %(cluster)s})
            ||| % s, '{{target}} broker {{broker_id}} ({{address}})')],
            w: 16,
            h: 6,
          }),

          g.row('Consumer groups'),
          g.table({
            title: 'Firing Kafka alerts',
            description: 'Every Kafka alert firing now for the selected clusters and groups (cluster alerts carry no group), with its severity. A critical makes the cluster red on the overview; the runbook of each alert is linked from its notification. Empty is healthy.',
            thresholds: g.statusThresholds,
            targets: [g.target('sum by (alertname, severity, target, group) (ALERTS{alertstate="firing", area="kafka", target=~"$target", group=~"$group|"})', '', instant=true)],
            transformations: [{ id: 'organize', options: { excludeByName: { Time: true, Value: true } } }],
            h: 6,
          }),
          g.table({
            title: 'Consumer groups',
            description: 'One row per group: its worst partition status (STOP and STALL page while its calendar is in session: KafkaConsumerGroupStopped, KafkaConsumerGroupStalled; REWIND warns: KafkaConsumerGroupRewound), coordinator state, members, offset lag, time lag, its objective and the lag as a share of it (amber from 100 %%: KafkaConsumerLagOverObjective warns, red from %d times: KafkaConsumerLagFarOverObjective pages; KafkaConsumerLagSustained pages after 15 minutes over), whether the time lag is only a floor, time since an offset last moved, and whether its calendar is in session (the lag and status alerts wait for it).' % factor,
            thresholds: text,
            targets: [
              g.target(statusExpr, '', instant=true),
              g.target(stateExpr, '', instant=true),
              g.target('max by (target, group) (tradeops_kafka_consumer_group_members{%(selector)s, %(vars)s})' % s, '', instant=true),
              g.target('max by (target, group) (tradeops_kafka_consumer_group_lag_offsets{%(selector)s, %(vars)s})' % s, '', instant=true),
              g.target('max by (target, group) (tradeops_kafka_consumer_group_max_lag_seconds{%(selector)s, %(vars)s})' % s, '', instant=true),
              g.target('max by (target, group) (tradeops_kafka_consumer_group_lag_objective_seconds{%(selector)s, %(vars)s})' % s, '', instant=true),
              g.target(lagRatio, '', instant=true),
              g.target('max by (target, group) (tradeops_kafka_consumer_topic_lag_seconds_lower_bound{%(selector)s, %(vars)s})' % s, '', instant=true),
              g.target('time() - max by (target, group) (tradeops_kafka_consumer_group_offset_advanced_timestamp_seconds{%(selector)s, %(vars)s})' % s, '', instant=true),
              g.target('max by (target, group) (tradeops:kafka_consumer_group_in_session{%(vars)s})' % s, '', instant=true),
            ],
            transformations: [
              { id: 'merge', options: {} },
              {
                id: 'organize',
                options: {
                  excludeByName: { Time: true },
                  indexByName: {
                    target: 0,
                    group: 1,
                    'Value #A': 2,
                    'Value #B': 3,
                    'Value #C': 4,
                    'Value #D': 5,
                    'Value #E': 6,
                    'Value #F': 7,
                    'Value #G': 8,
                    'Value #H': 9,
                    'Value #I': 10,
                    'Value #J': 11,
                  },
                  renameByName: {
                    target: 'Cluster',
                    group: 'Group',
                    'Value #A': 'Status',
                    'Value #B': 'State',
                    'Value #C': 'Members',
                    'Value #D': 'Offset lag',
                    'Value #E': 'Time lag',
                    'Value #F': 'Objective',
                    'Value #G': 'Lag / objective',
                    'Value #H': 'Lag is a floor',
                    'Value #I': 'Since progress',
                    'Value #J': 'Calendar',
                  },
                },
              },
            ],
            overrides: [
              column('Status', 'none', statusThresholds, statusMappings, 'color-background'),
              column('State', 'none', text, stateMappings),
              column('Members', 'none', text),
              column('Offset lag', 'short', text),
              column('Time lag', 's', text),
              column('Objective', 's', text),
              column('Lag / objective', 'percentunit', g.rag(1, factor), [], 'color-background'),
              column('Lag is a floor', 'none', text, g.boolMappings('no', 'at least', 'text', 'orange')),
              column('Since progress', 's', text),
              column('Calendar', 'none', text, g.boolMappings('closed', 'in session', 'text', 'green')),
            ],
            h: 9,
          }),
          g.stat({
            title: 'Lag on topics not draining',
            description: 'Messages of lag per group on topics where it consumed no faster than they were produced over the status window (0 per cluster when none). Amber from one message: KafkaConsumerNotDraining warns after 10 minutes in session; the consumers are too slow or stuck: add consumers or find the slow one (see "Produced vs consumed").',
            unit: 'short',
            thresholds: g.thresholds([[null, 'green'], [1, 'orange']]),
            targets: [g.target(orZero(|||
              sum by (target, group) (
                max by (target, group, topic) (
                  tradeops_kafka_consumer_topic_lag_offsets{%(selector)s, %(vars)s} > 0
                  and tradeops_kafka_consumer_topic_draining{%(selector)s, %(vars)s} == 0
                )
              )
            ||| % s), '{{target}} {{group}}', instant=true)],
            w: 12,
          }),
          g.stat({
            title: 'Partitions behind log start',
            description: "Committed partitions per group whose committed offset is below the partition's log start (0 per cluster when none). Red from one: KafkaConsumerBehindLogStart pages at any hour; retention deleted messages the group never consumed and it will skip them: that data is lost for the consumer, tell its owners (a replay from the source may be needed).",
            unit: 'none',
            thresholds: g.thresholds([[null, 'green'], [1, 'red']]),
            targets: [g.target(orZero(|||
              sum by (target, group) (
                max by (target, group, topic) (tradeops_kafka_consumer_topic_partitions_behind_log_start{%(selector)s, %(vars)s})
              ) > 0
            ||| % s), '{{target}} {{group}}', instant=true)],
            w: 12,
          }),

          g.row('Lag'),
          g.timeseries({
            title: 'Time lag / objective',
            description: "Each group's largest time lag as a share of its own objective. Amber from 100 %% (KafkaConsumerLagOverObjective warns after 2 minutes in session; KafkaConsumerLagSustained pages after 15), red from %d times (KafkaConsumerLagFarOverObjective pages after 2 minutes). When red, look at the status, members and drain time of that group." % factor,
            unit: 'percentunit',
            thresholds: g.rag(1, factor),
            targets: [g.target(lagRatio, '{{target}} {{group}}')],
          }),
          g.timeseries({
            title: 'Time lag',
            description: "Each group's largest estimated time lag (the age of its oldest unconsumed message), with its objective dashed. A floor when the oldest message predates the exporter's samples (\"Lag is a floor\" in the table). Lag above the dashed line in session is what the lag alerts fire on.",
            unit: 's',
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [
              g.target('max by (target, group) (tradeops_kafka_consumer_group_max_lag_seconds{%(selector)s, %(vars)s})' % s, '{{target}} {{group}}'),
              g.target('max by (target, group) (tradeops_kafka_consumer_group_lag_objective_seconds{%(selector)s, %(vars)s})' % s, 'objective {{target}} {{group}}'),
            ],
            overrides: [dashed('objective .*')],
          }),
          g.timeseries({
            title: 'Offset lag',
            description: 'Messages not yet consumed per group (log end minus committed offset, summed over its partitions read). A line that keeps rising is a group falling behind; one that falls is draining. Gaps are cycles where the group could not be read (OffsetFetch errors, an unreachable broker), not zero lag.',
            unit: 'short',
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [g.target('max by (target, group) (tradeops_kafka_consumer_group_lag_offsets{%(selector)s, %(vars)s})' % s, '{{target}} {{group}}')],
          }),
          g.timeseries({
            title: 'Time to drain',
            description: "Estimated time to consume each topic's lag at the group's current net rate (consume minus produce over the status window); 0 without lag. A line that ends means the group stopped draining that topic (see \"Lag on topics not draining\"). A drain time longer than the objective means the group will stay behind it: add consumers.",
            unit: 's',
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [g.target('max by (target, group, topic) (tradeops_kafka_consumer_topic_drain_seconds{%(selector)s, %(vars)s})' % s, '{{target}} {{group}} {{topic}}')],
          }),

          g.row('Progress'),
          g.stateTimeline({
            title: 'Group status over time',
            description: "Each group's worst partition status over the time range: OK, WARN (lag growing), REWIND (an offset went back: a reset or replay), STALL (members connected, offsets stuck with lag) and STOP (no members, offsets stuck with lag). Red bands in session are KafkaConsumerGroupStalled and KafkaConsumerGroupStopped; restart or scale the consumers.",
            unit: 'none',
            thresholds: statusThresholds,
            mappings: statusMappings,
            targets: [g.target(statusExpr, '{{target}} {{group}}')],
          }),
          g.timeseries({
            title: 'Partitions by status',
            description: 'Committed partitions of each group read per cycle, by status other than ok (warn, rewind, stall, stop). Tells how much of a group is affected: stall or stop on every partition is the whole group down, on one a single stuck consumer. A rewind here warns (KafkaConsumerGroupRewound) even when a worse status hides it above.',
            unit: 'none',
            decimals: 0,
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [g.target('max by (target, group, status) (tradeops_kafka_consumer_group_partitions{%(selector)s, %(vars)s, status!="ok"})' % s, '{{target}} {{group}} {{status}}')],
          }),
          g.timeseries({
            title: 'Produced vs consumed',
            description: 'Messages per second produced to each topic the selected groups consume (solid) and consumed by each group from it (dashed), from the log-end and committed offsets. Consumed below produced is growing lag; consumed at zero while produced is not is a stopped or stalled group.',
            unit: 'mps',
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [
              g.target(|||
                sum by (target, topic) (rate(tradeops_kafka_topic_end_offset{%(selector)s, %(cluster)s}[$__rate_interval]))
                and on (target, topic)
                group by (target, topic) (tradeops_kafka_consumer_topic_committed_offset{%(selector)s, %(vars)s})
              ||| % s, 'produced {{target}} {{topic}}'),
              g.target('sum by (target, group, topic) (rate(tradeops_kafka_consumer_topic_committed_offset{%(selector)s, %(vars)s}[$__rate_interval]))' % s, 'consumed {{target}} {{group}} {{topic}}'),
            ],
            overrides: [dashed('consumed .*')],
          }),
          g.timeseries({
            title: 'Members',
            description: 'Consumers connected per group. A drop to zero while lag grows in session is KafkaConsumerGroupNoMembers (warning), then KafkaConsumerGroupStopped once offsets stay still (critical): the consumer application is down; restart it. Steps are rebalances (see "State" in the table).',
            unit: 'none',
            decimals: 0,
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [g.target('max by (target, group) (tradeops_kafka_consumer_group_members{%(selector)s, %(vars)s})' % s, '{{target}} {{group}}')],
          }),
          g.timeseries({
            title: 'Probe run duration / deadline',
            description: "Each cluster's last probe run time as a share of its deadline, with the broker requests per cycle on the right axis. Amber from %g (ProbeNearDeadline warns), red at 1 (the run is cut off and its groups are not read). When red, a broker is slow or the cluster has many groups: raise the timeout or narrow the group filter." % t.probeDeadlineRatio,
            unit: 'percentunit',
            thresholds: g.rag(t.probeDeadlineRatio, 1),
            targets: [
              g.target('tradeops_probe_duration_seconds{%(selector)s, kind="kafka", %(cluster)s} / on (job, instance, kind, target) tradeops_probe_timeout_seconds{%(selector)s, kind="kafka", %(cluster)s}' % s, '{{target}}'),
              g.target('max by (target) (tradeops_kafka_requests_per_cycle{%(selector)s, %(cluster)s})' % s, 'requests {{target}}'),
            ],
            overrides: [{
              matcher: { id: 'byRegexp', options: 'requests .*' },
              properties: [
                { id: 'unit', value: 'none' },
                { id: 'custom.axisPlacement', value: 'right' },
                { id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } },
              ],
            }],
          }),
        ],
      }),
  },
}
