// Backups: the recovery point against its objective, the newest attempt,
// checksums, retention, backup sizes, pgBackRest's stanza and WAL archive, and
// restore drills. One target is one backup set; its source (directory,
// pgBackRest, restore_drill) decides which of these panels it fills.
local g = import 'lib/grafana.libsonnet';

{
  grafanaDashboards+:: {
    backups:
      local cfg = $._config;
      local t = cfg.thresholds;
      local s = { selector: cfg.selector, vars: 'target=~"$target"', on: 'on (job, instance, target)' };
      local hours(seconds) = '%g h' % (seconds / 3600);
      g.dashboard(cfg, 'backups', {
        description: "Backup sets: how much data a restore now would lose against each set's RPO objective, whether the newest backup succeeded and matches its checksum, how many backups are retained, pgBackRest's stanza and WAL archive, and whether restore drills prove the backups restorable.",
        tags: ['backups'],
        variables: [
          g.queryVariable('target', 'Backup set', 'tradeops_up{%(selector)s, kind="backups"}' % s, 'target'),
        ],
        panels: [
          g.row('Recovery point'),
          g.stat({
            title: 'Probe up',
            description: "Whether the last probe run of each backup set succeeded. Red: the set's data series are withdrawn, so the panels below are empty for it and its backup alerts resolve; ProbeTargetDown reports it. Click through to the exporter dashboard for the failure reason (an unmounted directory, pgbackrest failing, an unreadable drill path).",
            unit: 'none',
            thresholds: g.thresholds([[null, 'red'], [1, 'green']]),
            mappings: g.boolMappings('down', 'up'),
            fieldLinks: [g.dashboardLink(cfg, 'exporter', 'Probe errors of ${__field.labels.target}', 'var-kind=backups&var-target=${__field.labels.target}')],
            targets: [g.target('tradeops_up{%(selector)s, kind="backups", %(vars)s}' % s, '{{target}}', instant=true)],
            w: 4,
          }),
          g.stat({
            title: 'RPO / objective',
            description: 'Data a restore now would lose, as a share of the set\'s configured RPO objective (tradeops_backup_rpo_objective_seconds). Amber from 100 %% (BackupRpoOverObjective warns), red from %g %% (BackupRpoFarOverObjective pages). When red, see "Last attempt" and "Backup running": a backup failed, is late, or hangs; start one by hand once the cause is fixed.' % (100 * t.backupRpoCriticalRatio),
            unit: 'percentunit',
            decimals: 0,
            thresholds: g.rag(1, t.backupRpoCriticalRatio),
            targets: [g.target('tradeops:backup_rpo_objective:ratio{%(vars)s}' % s, '{{target}}', instant=true)],
            w: 5,
          }),
          g.stat({
            title: 'RPO',
            description: 'Seconds of data a restore now would lose: the time since the newest recovery point (the last successful backup, or the last archived WAL segment for pgBackRest with repo_path). Empty for a set with no successful backup at all (BackupNoSuccessfulBackup pages). Compare with the objective in "RPO vs objective".',
            unit: 's',
            thresholds: g.thresholds([[null, 'text']]),
            targets: [g.target('tradeops_backup_rpo_seconds{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
            w: 5,
          }),
          g.stat({
            title: 'Last attempt',
            description: 'Whether the newest finished backup of each set succeeded. Amber "failed": BackupLastAttemptFailed warns (a failed manifest or a bare file below min_size_bytes), or for pgBackRest BackupPgBackRestPageChecksumErrors (page checksum errors in the copied database files). Older backups still count; read the backup job\'s log and rerun it.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'orange'], [1, 'green']]),
            mappings: g.boolMappings('failed', 'ok', 'orange'),
            targets: [g.target('tradeops_backup_last_attempt_success{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
            w: 5,
          }),
          g.stat({
            title: 'Backup running',
            description: 'Whether a backup is running now (pgBackRest holds the backup lock, or a manifest says running). A backup running for hours while the RPO is over its objective is hung: it holds its lock and no new backup starts; check the backup process.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'text'], [1, 'blue']]),
            mappings: g.boolMappings('idle', 'running', 'text', 'blue'),
            targets: [g.target('tradeops_backup_in_progress{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
            w: 5,
          }),
          g.timeseries({
            title: 'RPO / objective over time',
            description: 'The RPO of each set as a share of its objective. A saw-tooth below 100 %% is healthy (each backup resets it); a ramp means backups stopped succeeding. Amber line: BackupRpoOverObjective warns; red line at %g %%: BackupRpoFarOverObjective pages.' % (100 * t.backupRpoCriticalRatio),
            unit: 'percentunit',
            thresholds: g.rag(1, t.backupRpoCriticalRatio),
            targets: [g.target('tradeops:backup_rpo_objective:ratio{%(vars)s}' % s, '{{target}}')],
          }),
          g.timeseries({
            title: 'RPO vs objective',
            description: 'The RPO of each set in seconds, with its configured objective as a dashed line. Where a solid line crosses its dashed one, the set is past its RPO objective: a restore would lose more than the business accepted.',
            unit: 's',
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [
              g.target('tradeops_backup_rpo_seconds{%(selector)s, %(vars)s}' % s, '{{target}}'),
              g.target('tradeops_backup_rpo_objective_seconds{%(selector)s, %(vars)s}' % s, 'objective {{target}}'),
            ],
            overrides: [{
              matcher: { id: 'byRegexp', options: 'objective .*' },
              properties: [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }],
            }],
          }),
          g.row('Verification and retention'),
          g.stat({
            title: 'Checksum',
            description: 'Whether the newest verified backup file matches the checksum in its manifest (directory sets with checksums). Red "mismatch": BackupChecksumMismatch pages: the backup is corrupt, truncated or missing, and a restore must fall back to an older one; find out what damaged it and take a new backup. Empty until the first verification completes.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'red'], [1, 'green']]),
            mappings: g.boolMappings('mismatch', 'ok'),
            targets: [g.target('tradeops_backup_checksum_ok{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
            w: 4,
          }),
          g.stat({
            title: 'Checksum verified',
            description: "Time since the last checksum verification completed. Verification hashes at most checksum.bytes_per_run per probe run, so a large new backup takes several runs; when this keeps growing, verification is not finishing: check the exporter log and the file's size.",
            unit: 's',
            thresholds: g.thresholds([[null, 'text']]),
            targets: [g.target('time() - tradeops_backup_checksum_verified_timestamp_seconds{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
            w: 4,
          }),
          g.stat({
            title: 'Invalid manifests',
            description: 'Manifests of a directory set that cannot be read or parsed and are skipped: the backups they describe do not count. Amber from one (BackupInvalidManifests warns): fix or remove the named manifests (the exporter log lists them).',
            unit: 'none',
            thresholds: g.thresholds([[null, 'green'], [1, 'orange']]),
            targets: [g.target('tradeops_backup_invalid_manifests{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
            w: 4,
          }),
          g.stat({
            title: 'Retained over minimum',
            description: 'Successful backups inside the retention window (all types) minus the configured minimum (tradeops_backup_retention_min_backups). Amber below 0: BackupRetentionBelowMinimum warns; expiry removed too many or backups have been failing. Check the retention settings and the backup schedule.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'orange'], [0, 'green']]),
            targets: [g.target(|||
              sum by (job, instance, target) (tradeops_backup_retention_window_backups{%(selector)s, %(vars)s})
              - %(on)s
              tradeops_backup_retention_min_backups{%(selector)s, %(vars)s}
            ||| % s, '{{target}}', instant=true)],
            w: 4,
          }),
          g.stat({
            title: 'Sets with no good backup',
            description: 'Directory and pgBackRest sets that list no successful backup at all. Red from one: BackupNoSuccessfulBackup pages, there is nothing to restore from (an empty or unmounted directory, only failed backups, or a stanza with no valid backup). Check the mount and the backup job first.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'green'], [1, 'red']]),
            targets: [g.target(|||
              count(
                tradeops_backup_retention_window_seconds{%(selector)s, %(vars)s}
                unless %(on)s
                tradeops_backup_last_success_timestamp_seconds{%(selector)s, %(vars)s}
              ) or vector(0)
            ||| % s, 'sets', instant=true)],
            w: 4,
          }),
          g.stat({
            title: 'Size vs largest in range',
            description: 'Size of the newest successful backup of each type as a share of the largest in the time range. No alert; amber below 80 %: the newest backup is much smaller than before, so check it is complete (a dump of a partly dropped or empty database still "succeeds").',
            unit: 'percentunit',
            decimals: 0,
            thresholds: g.thresholds([[null, 'orange'], [0.8, 'green']]),
            targets: [g.target(|||
              tradeops_backup_last_size_bytes{%(selector)s, %(vars)s}
              / (max_over_time(tradeops_backup_last_size_bytes{%(selector)s, %(vars)s}[$__range]) > 0)
            ||| % s, '{{target}} {{type}}', instant=true)],
            w: 4,
          }),
          g.timeseries({
            title: 'Backup size',
            description: 'Size of the newest successful backup per set and type (the database size for pgBackRest), and for pgBackRest the bytes it added to the repository (dashed). Steady growth is the trend to plan storage by; a sudden drop means a backup is missing data; a sudden jump, a full backup in place of an incremental one.',
            unit: 'bytes',
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [
              g.target('tradeops_backup_last_size_bytes{%(selector)s, %(vars)s}' % s, '{{target}} {{type}}'),
              g.target('tradeops_backup_last_repository_size_bytes{%(selector)s, %(vars)s}' % s, 'repository {{target}} {{type}}'),
            ],
            overrides: [{
              matcher: { id: 'byRegexp', options: 'repository .*' },
              properties: [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }],
            }],
          }),
          g.timeseries({
            title: 'Retained backups vs minimum',
            description: 'Successful backups inside the retention window per set (all types), with the configured minimum dashed. Where a solid line falls below its dashed one, BackupRetentionBelowMinimum warns after 15 minutes.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [
              g.target('sum by (target) (tradeops_backup_retention_window_backups{%(selector)s, %(vars)s})' % s, '{{target}}'),
              g.target('max by (target) (tradeops_backup_retention_min_backups{%(selector)s, %(vars)s})' % s, 'minimum {{target}}'),
            ],
            overrides: [{
              matcher: { id: 'byRegexp', options: 'minimum .*' },
              properties: [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }],
            }],
          }),
          g.row('pgBackRest'),
          g.stat({
            title: 'Stanza status',
            description: 'pgbackrest info\'s stanza status. Red "no valid backups": BackupNoSuccessfulBackup pages; amber for any other error (BackupPgBackRestStanzaError warns): a missing stanza path or data, a different cluster or database across repositories, a lock. Run `pgbackrest info` and `pgbackrest check` on the stanza.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'green'], [1, 'orange']]),
            mappings: [{
              type: 'value',
              options: {
                '0': { text: 'ok', color: 'green', index: 0 },
                '1': { text: 'missing stanza path', color: 'orange', index: 1 },
                '2': { text: 'no valid backups', color: 'red', index: 2 },
                '3': { text: 'missing stanza data', color: 'orange', index: 3 },
                '4': { text: 'different cluster', color: 'orange', index: 4 },
                '5': { text: 'database mismatch', color: 'orange', index: 5 },
                '6': { text: 'lock', color: 'orange', index: 6 },
                '99': { text: 'other error', color: 'orange', index: 7 },
              },
            }],
            targets: [g.target('tradeops_backup_pgbackrest_stanza_status_code{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
            w: 6,
          }),
          g.stat({
            title: 'WAL last archived',
            description: "Time since the newest WAL segment reached the repository (needs repo_path). Amber from %s: BackupPgBackRestWalArchiveStalled warns; point-in-time recovery stops at the last archived segment and pg_wal fills on the primary. Check archive_command and the primary's log." % hours(t.backupWalArchiveStallSeconds),
            unit: 's',
            thresholds: g.thresholds([[null, 'green'], [t.backupWalArchiveStallSeconds, 'orange']]),
            targets: [g.target('time() - tradeops_backup_pgbackrest_wal_last_archived_timestamp_seconds{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
            w: 6,
          }),
          g.stat({
            title: 'Newest backup age',
            description: 'Time since the newest successful pgBackRest backup of any type finished, where WAL archiving sets the recovery point. Amber from %s: BackupPgBackRestBackupTooOld warns; backup runs fail or are not scheduled, and a restore replays ever more WAL. Check the backup schedule and its log.' % hours(t.backupBaseBackupMaxAgeSeconds),
            unit: 's',
            thresholds: g.thresholds([[null, 'green'], [t.backupBaseBackupMaxAgeSeconds, 'orange']]),
            targets: [g.target(|||
              time() - max by (job, instance, target) (tradeops_backup_last_success_timestamp_seconds{%(selector)s, %(vars)s})
              and %(on)s
              tradeops_backup_pgbackrest_wal_last_archived_timestamp_seconds{%(selector)s, %(vars)s}
            ||| % s, '{{target}}', instant=true)],
            w: 6,
          }),
          g.stat({
            title: 'pgbackrest info output age',
            description: 'Time since the saved `pgbackrest info` output (output_file) was last written. Amber from %s: BackupPgBackRestOutputStale warns, and the RPO, WAL and retention alerts of the set are held back because the file no longer tells how old the backups are. Restart whatever refreshes it.' % hours(t.backupPgBackRestOutputMaxAgeSeconds),
            unit: 's',
            thresholds: g.thresholds([[null, 'green'], [t.backupPgBackRestOutputMaxAgeSeconds, 'orange']]),
            targets: [g.target('time() - tradeops_backup_pgbackrest_output_modified_timestamp_seconds{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
            w: 6,
          }),
          g.row('Restore drills'),
          g.stat({
            title: 'Last drill',
            description: 'Whether the newest restore drill succeeded. Amber "failed": BackupRestoreDrillFailed warns; read the drill\'s record and log, fix the cause and rerun the drill. Failed checksums are the red panel next to it.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'orange'], [1, 'green']]),
            mappings: g.boolMappings('failed', 'ok', 'orange'),
            targets: [g.target('tradeops_backup_restore_drill_last_success{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
            w: 4,
          }),
          g.stat({
            title: 'Drill checksums failed',
            description: 'Checksums that did not match in the newest restore drill. Red from one: BackupRestoreDrillChecksumsFailed pages; the backup it restored yields wrong data, so do not rely on it: verify the backups of that set and take a new one.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'green'], [1, 'red']]),
            targets: [g.target('tradeops_backup_restore_drill_last_checksums_failed{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
            w: 4,
          }),
          g.stat({
            title: 'Drill age / max interval',
            description: 'Time since the last successful restore drill as a share of the allowed interval (tradeops_backup_restore_drill_max_interval_seconds). Amber from 100 %: BackupRestoreDrillOverdue warns; schedule a drill. Empty when no drill has ever succeeded (see "Drill records").',
            unit: 'percentunit',
            decimals: 0,
            thresholds: g.thresholds([[null, 'green'], [1, 'orange']]),
            targets: [g.target(|||
              (time() - tradeops_backup_restore_drill_last_success_timestamp_seconds{%(selector)s, %(vars)s})
              / %(on)s
              tradeops_backup_restore_drill_max_interval_seconds{%(selector)s, %(vars)s}
            ||| % s, '{{target}}', instant=true)],
            w: 4,
          }),
          g.stat({
            title: 'Drill records',
            description: 'Restore-drill records found in the drill path. Amber at 0: BackupRestoreDrillMissing warns, no drill has ever reported, so no restore of this data is proven; check the drill job writes to the configured path.',
            unit: 'none',
            thresholds: g.thresholds([[null, 'orange'], [1, 'green']]),
            targets: [g.target('tradeops_backup_restore_drill_records{%(selector)s, %(vars)s}' % s, '{{target}}', instant=true)],
            w: 4,
          }),
          g.stat({
            title: 'Newest drill verified',
            description: 'What the newest restore drill verified in the restored database: rows and checksums, and how long it took. Informational: a drill that verifies far fewer rows than the last one restored an incomplete backup.',
            unit: 'short',
            thresholds: g.thresholds([[null, 'text']]),
            targets: [
              g.target('tradeops_backup_restore_drill_last_rows_verified{%(selector)s, %(vars)s}' % s, '{{target}} rows', instant=true),
              g.target('tradeops_backup_restore_drill_last_checksums_verified{%(selector)s, %(vars)s}' % s, '{{target}} checksums', instant=true),
              g.target('tradeops_backup_restore_drill_last_duration_seconds{%(selector)s, %(vars)s}' % s, '{{target}} duration', instant=true),
            ],
            overrides: [{
              matcher: { id: 'byRegexp', options: '.* duration' },
              properties: [{ id: 'unit', value: 's' }],
            }],
            w: 8,
          }),
          g.timeseries({
            title: 'Drill age vs max interval',
            description: 'Time since the last successful and since the newest restore drill per drill set, with the allowed interval dashed. A saw-tooth under the dashed line is healthy; where the success line crosses it, BackupRestoreDrillOverdue warns; where the two lines part, drills run but fail.',
            unit: 's',
            thresholds: g.thresholds([[null, 'green']]),
            thresholdsStyle: 'off',
            targets: [
              g.target('time() - tradeops_backup_restore_drill_last_success_timestamp_seconds{%(selector)s, %(vars)s}' % s, 'last success {{target}}'),
              g.target('time() - tradeops_backup_restore_drill_last_timestamp_seconds{%(selector)s, %(vars)s}' % s, 'newest {{target}}'),
              g.target('tradeops_backup_restore_drill_max_interval_seconds{%(selector)s, %(vars)s}' % s, 'max interval {{target}}'),
            ],
            overrides: [{
              matcher: { id: 'byRegexp', options: 'max interval .*' },
              properties: [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }],
            }],
            w: 24,
          }),
        ],
      }),
  },
}
