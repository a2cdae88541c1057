// Backups: the recovery point against its objective, failed and corrupt backups,
// retention, pgBackRest's stanza and WAL archive, and restore drills.
//
// One target is one backup set; its source (a directory of manifests or bare
// files, pgBackRest, restore-drill records) decides which series it has, so every
// rule reads only series of one source and joins a target's threshold gauges
// on (job, instance, target). Nothing here is calendar-gated: backups run at
// night and weekends. Severity follows the data at risk: critical only when a
// restore now would lose much more than the objective (or nothing restorable
// exists, or a backup or a restore proved corrupt); everything else is a warning
// for the working day. A target that is down has its data series withdrawn, so
// these alerts resolve and ProbeTargetDown (exporter area) reports it.
local a = import '../../bundle/lib/alerts.libsonnet';

{
  _config+:: {
    thresholds+: {
      // The RPO pages past this multiple of the set's objective. At the default
      // 26 h objective of a daily backup the warning comes 2 h after a missed
      // run and the page 13 h later (39 h): the working day had the warning, and
      // a restore would now lose half again what the business accepted.
      backupRpoCriticalRatio: 1.5,
      // pgBackRest with WAL-based RPO: the newest successful backup of any type
      // older than this warns (the RPO stays small while WAL is archived, but
      // failed backup runs leave no record).
      backupBaseBackupMaxAgeSeconds: 26 * 3600,
      // pgBackRest `output_file`: older than this, the saved `pgbackrest info`
      // no longer tells how old backups and WAL are (keep it below the WAL stall
      // threshold: refresh it every few minutes).
      backupPgBackRestOutputMaxAgeSeconds: 3600,
    },
  },

  rules+:: {
    local cfg = $._config,
    local t = cfg.thresholds,
    local alert(o) = a.alert(cfg, o { area: 'backups', dashboard: 'backups', vars: { target: 'target' } }),
    local w(d) = a.window(cfg, d),
    local on = 'on (job, instance, target)',

    // Template snippets: another series of the alert's target, for descriptions.
    local series(metric, filter='') =
      'printf "' + metric + '{job=%q, instance=%q, target=%q}' + filter + '" $labels.job $labels.instance $labels.target',
    local valueOf(metric, fmt, otherwise='') =
      '{{ with ' + series(metric) + ' | query }}{{ . | first | value | ' + fmt + ' }}'
      + (if otherwise == '' then '' else '{{ else }}' + otherwise) + '{{ end }}',
    local running =
      '{{ with ' + series('tradeops_backup_in_progress', ' == 1') + ' | query }} A backup is running now.{{ end }}',

    // The saved pgBackRest output has not been refreshed: the ages computed from
    // it (RPO, WAL, backup age, retention count) say how old the file is, not
    // the backups. BackupPgBackRestOutputStale reports it instead of them.
    local staleOutput =
      '(time() - tradeops_backup_pgbackrest_output_modified_timestamp_seconds{%(selector)s} > %(max)s)'
      % (cfg { max: a.num(t.backupPgBackRestOutputMaxAgeSeconds) }),
    local unlessStale = 'unless %s %s' % [on, staleOutput],

    local stallWindow = w(a.duration(t.backupWalArchiveStallSeconds)),

    backups: {
      groups: [
        a.group('tradeops-backups', [
          a.record(
            'tradeops:backup_rpo_objective:ratio',
            |||
              tradeops_backup_rpo_seconds{%(selector)s}
              / on (job, instance, target)
              tradeops_backup_rpo_objective_seconds{%(selector)s}
            ||| % cfg
          ),
          alert({
            name: 'BackupRpoOverObjective',
            severity: 'warning',
            // A running backup does not hold this back: the RPO is what a restore
            // now would lose, a backup still running at the objective is late or
            // slow, and a hung one would hold its lock (or `running` manifest)
            // for ever. The description says when one is running.
            expr: |||
              tradeops_backup_rpo_seconds{%(selector)s}
              > on (job, instance, target)
              tradeops_backup_rpo_objective_seconds{%(selector)s}
              %(unlessStale)s
            ||| % (cfg { unlessStale: unlessStale }),
            'for': '15m',
            summary: 'A backup set is past its recovery point objective.',
            description: 'Backup set {{ $labels.target }}: a restore now would lose {{ $value | humanizeDuration }} of data, over its RPO objective of ' + valueOf('tradeops_backup_rpo_objective_seconds', 'humanizeDuration') + '.' + running,
          }),
          alert({
            name: 'BackupRpoFarOverObjective',
            severity: 'critical',
            expr: |||
              tradeops_backup_rpo_seconds{%(selector)s}
              > on (job, instance, target)
              %(ratio)s * tradeops_backup_rpo_objective_seconds{%(selector)s}
              %(unlessStale)s
            ||| % (cfg { ratio: a.num(t.backupRpoCriticalRatio), unlessStale: unlessStale }),
            'for': '5m',
            summary: 'A backup set is far past its recovery point objective.',
            description: 'Backup set {{ $labels.target }}: a restore now would lose {{ $value | humanizeDuration }} of data, over %s times its RPO objective of ' % a.num(t.backupRpoCriticalRatio) + valueOf('tradeops_backup_rpo_objective_seconds', 'humanizeDuration') + '.' + running,
          }),
          alert({
            name: 'BackupNoSuccessfulBackup',
            severity: 'critical',
            // Directory and pgBackRest sets report the retention window; one with
            // no successful backup of any type has no last success (and no RPO).
            expr: |||
              tradeops_backup_retention_window_seconds{%(selector)s}
              unless on (job, instance, target)
              tradeops_backup_last_success_timestamp_seconds{%(selector)s}
            ||| % cfg,
            'for': '10m',
            summary: 'A backup set has no successful backup to restore from.',
            description: 'Backup set {{ $labels.target }} lists no successful backup at all: there is nothing to restore from (an empty or unmounted directory, only failed backups, or a pgBackRest stanza with no valid backup).',
          }),
          alert({
            name: 'BackupLastAttemptFailed',
            severity: 'warning',
            // pgBackRest lists completed backups only; its 0 is the next alert.
            expr: |||
              tradeops_backup_last_attempt_success{%(selector)s} == 0
              unless on (job, instance, target)
              tradeops_backup_pgbackrest_stanza_ok{%(selector)s}
            ||| % cfg,
            'for': '5m',
            summary: 'The newest backup of a backup set failed.',
            description: 'Backup set {{ $labels.target }}: the newest finished backup (' + valueOf('tradeops_backup_last_attempt_timestamp_seconds', 'humanizeTimestamp') + ') failed: its manifest says failed, or the bare file is smaller than min_size_bytes. Older backups still count; the RPO keeps growing until one succeeds.',
          }),
          alert({
            name: 'BackupPgBackRestPageChecksumErrors',
            severity: 'warning',
            expr: |||
              tradeops_backup_last_attempt_success{%(selector)s} == 0
              and on (job, instance, target)
              tradeops_backup_pgbackrest_stanza_ok{%(selector)s}
            ||| % cfg,
            'for': '5m',
            summary: 'The newest pgBackRest backup found page checksum errors.',
            description: 'Backup set {{ $labels.target }}: the newest pgBackRest backup (' + valueOf('tradeops_backup_last_attempt_timestamp_seconds', 'humanizeTimestamp') + ') is flagged with errors (page checksum errors in the database files it copied); it does not count as a good backup.',
          }),
          alert({
            name: 'BackupChecksumMismatch',
            severity: 'critical',
            expr: 'tradeops_backup_checksum_ok{%(selector)s} == 0' % cfg,
            'for': '2m',
            summary: 'The newest backup does not match its checksum.',
            description: 'Backup set {{ $labels.target }}: the newest backup with a checksum (verified ' + valueOf('tradeops_backup_checksum_verified_timestamp_seconds', 'humanizeTimestamp') + ') does not match its manifest: it is corrupt, truncated or missing. A restore must fall back to an older backup.',
          }),
          alert({
            name: 'BackupInvalidManifests',
            severity: 'warning',
            expr: 'tradeops_backup_invalid_manifests{%(selector)s} > 0' % cfg,
            'for': '10m',
            summary: 'Backup manifests cannot be read or parsed.',
            description: 'Backup set {{ $labels.target }}: {{ $value | printf "%.0f" }} manifests are unreadable or malformed and are skipped; the backups they describe do not count.',
          }),
          alert({
            name: 'BackupRetentionBelowMinimum',
            severity: 'warning',
            // A set with no successful backup at all is BackupNoSuccessfulBackup.
            expr: |||
              sum by (job, instance, target) (tradeops_backup_retention_window_backups{%(selector)s})
              < on (job, instance, target)
              tradeops_backup_retention_min_backups{%(selector)s}
              and on (job, instance, target)
              tradeops_backup_last_success_timestamp_seconds{%(selector)s}
              %(unlessStale)s
            ||| % (cfg { unlessStale: unlessStale }),
            'for': '15m',
            summary: 'Fewer successful backups are retained than configured.',
            description: 'Backup set {{ $labels.target }}: {{ $value | printf "%.0f" }} successful backups inside the retention window of ' + valueOf('tradeops_backup_retention_window_seconds', 'humanizeDuration') + ', fewer than the ' + valueOf('tradeops_backup_retention_min_backups', 'printf "%.0f"') + ' configured.',
          }),
          alert({
            name: 'BackupPgBackRestStanzaError',
            severity: 'warning',
            // Code 2 (no valid backups) is BackupNoSuccessfulBackup.
            expr: |||
              tradeops_backup_pgbackrest_stanza_status_code{%(selector)s} != 2
              and on (job, instance, target)
              tradeops_backup_pgbackrest_stanza_ok{%(selector)s} == 0
            ||| % cfg,
            'for': '5m',
            summary: 'The pgBackRest stanza reports an error.',
            description: 'Backup set {{ $labels.target }}: pgbackrest info reports stanza status code {{ $value | printf "%.0f" }} ({{ if eq $value 1.0 }}missing stanza path{{ else if eq $value 3.0 }}missing stanza data{{ else if eq $value 4.0 }}different across repositories{{ else if eq $value 5.0 }}database mismatch across repositories{{ else if eq $value 6.0 }}requested backup not found{{ else }}other error{{ end }}).',
          }),
          alert({
            name: 'BackupPgBackRestWalArchiveStalled',
            severity: 'warning',
            // With repo_path the exporter knows when the newest segment was
            // archived; without it, the archive's end position must move within
            // the window (and must have existed at its start, so a restart of the
            // exporter or of Prometheus does not look like a stall). Both assume
            // the primary switches WAL segments at least once per window: write
            // activity plus archive_timeout (a server with no writes at all
            // archives nothing).
            expr: |||
              (
                (
                  time() - tradeops_backup_pgbackrest_wal_last_archived_timestamp_seconds{%(selector)s}
                  > %(stall)s
                )
                or on (job, instance, target)
                (
                  (changes(tradeops_backup_pgbackrest_wal_archive_max_bytes{%(selector)s}[%(w)s]) == 0) + %(ws)s
                  and on (job, instance, target)
                  tradeops_backup_pgbackrest_wal_archive_max_bytes{%(selector)s} offset %(w)s
                  unless on (job, instance, target)
                  tradeops_backup_pgbackrest_wal_last_archived_timestamp_seconds{%(selector)s}
                )
              )
              %(unlessStale)s
            ||| % (cfg {
                     stall: a.num(t.backupWalArchiveStallSeconds),
                     w: stallWindow,
                     ws: a.num(a.seconds(stallWindow)),
                     unlessStale: unlessStale,
                   }),
            'for': '5m',
            summary: 'No WAL has reached the pgBackRest repository for too long.',
            description: 'Backup set {{ $labels.target }}: no WAL segment reached the repository for at least {{ $value | humanizeDuration }}. Point-in-time recovery stops at the last archived segment, and the primary keeps unarchived WAL in pg_wal until its disk fills.',
          }),
          alert({
            name: 'BackupPgBackRestBackupTooOld',
            severity: 'warning',
            // Only where WAL archiving sets the recovery point: elsewhere the
            // RPO alerts already measure the age of the newest backup.
            expr: |||
              time() - max by (job, instance, target) (tradeops_backup_last_success_timestamp_seconds{%(selector)s})
              > %(age)s
              and on (job, instance, target)
              tradeops_backup_pgbackrest_wal_last_archived_timestamp_seconds{%(selector)s}
              %(unlessStale)s
            ||| % (cfg { age: a.num(t.backupBaseBackupMaxAgeSeconds), unlessStale: unlessStale }),
            'for': '10m',
            summary: 'The newest pgBackRest backup is old although WAL is archived.',
            description: 'Backup set {{ $labels.target }}: the newest successful pgBackRest backup finished {{ $value | humanizeDuration }} ago. WAL archiving keeps the RPO small, but backup runs are failing or not scheduled: a restore replays ever more WAL, and expiry thins the retained backups.',
          }),
          alert({
            name: 'BackupPgBackRestOutputStale',
            severity: 'warning',
            expr: |||
              time() - tradeops_backup_pgbackrest_output_modified_timestamp_seconds{%(selector)s}
              > %(max)s
            ||| % (cfg { max: a.num(t.backupPgBackRestOutputMaxAgeSeconds) }),
            'for': '5m',
            summary: 'The saved pgbackrest info output is no longer refreshed.',
            description: 'Backup set {{ $labels.target }}: the saved pgbackrest info output was last written {{ $value | humanizeDuration }} ago. Whatever refreshes it has stopped; the RPO, WAL and retention alerts of this set are held back until it is fresh again.',
          }),
        ]),
        a.group('tradeops-backups-drills', [
          alert({
            name: 'BackupRestoreDrillOverdue',
            severity: 'warning',
            expr: |||
              time() - tradeops_backup_restore_drill_last_success_timestamp_seconds{%(selector)s}
              > on (job, instance, target)
              tradeops_backup_restore_drill_max_interval_seconds{%(selector)s}
            ||| % cfg,
            'for': '15m',
            summary: 'No restore drill has succeeded for longer than allowed.',
            description: 'Restore drills {{ $labels.target }}: the last successful drill was {{ $value | humanizeDuration }} ago, longer than the allowed ' + valueOf('tradeops_backup_restore_drill_max_interval_seconds', 'humanizeDuration') + '.',
          }),
          alert({
            name: 'BackupRestoreDrillMissing',
            severity: 'warning',
            expr: 'tradeops_backup_restore_drill_records{%(selector)s} == 0' % cfg,
            'for': '15m',
            summary: 'No restore-drill record exists.',
            description: 'Restore drills {{ $labels.target }}: the drill path holds no record: no restore drill has ever reported, so no restore of this data has been proven.',
          }),
          alert({
            name: 'BackupRestoreDrillFailed',
            severity: 'warning',
            // Failed checksums are the critical alert below.
            expr: |||
              tradeops_backup_restore_drill_last_success{%(selector)s} == 0
              unless on (job, instance, target)
              tradeops_backup_restore_drill_last_checksums_failed{%(selector)s} > 0
            ||| % cfg,
            'for': '5m',
            summary: 'The newest restore drill failed.',
            description: 'Restore drills {{ $labels.target }}: the newest drill (' + valueOf('tradeops_backup_restore_drill_last_timestamp_seconds', 'humanizeTimestamp') + ') failed; the last successful one was ' + valueOf('tradeops_backup_restore_drill_last_success_timestamp_seconds', 'humanizeTimestamp', 'never seen') + '.',
          }),
          alert({
            name: 'BackupRestoreDrillChecksumsFailed',
            severity: 'critical',
            expr: 'tradeops_backup_restore_drill_last_checksums_failed{%(selector)s} > 0' % cfg,
            'for': '5m',
            summary: 'A restore drill restored data that does not match its checksums.',
            description: 'Restore drills {{ $labels.target }}: {{ $value | printf "%.0f" }} checksums did not match in the newest drill (' + valueOf('tradeops_backup_restore_drill_last_timestamp_seconds', 'humanizeTimestamp') + '): the backup it restored yields wrong data.',
          }),
        ]),
      ],
    },
  },
}
