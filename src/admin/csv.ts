/**
 * The audit trail as CSV, for the admins' own records and spreadsheets. UTF-8 with a byte
 * order mark and semicolons, as German spreadsheet programs open it by double-click.
 */
import { Readable } from 'node:stream';

import { stringify } from 'csv-stringify';

import type { AuditEntry } from '../audit/query.ts';
import type { Translate } from '../http/views.ts';
import { auditWording } from './audit-wording.ts';

/**
 * A cell that a spreadsheet would run as a formula (OWASP "CSV injection"): a typed
 * username of a failed sign-in is attacker-controlled text.
 */
const defused = (value: string) => (/^[=+\-@\t\r]/.test(value) ? `'${value}` : value);

/** A readable CSV stream of `entries`, with German column names (or English). */
export function auditCsv(entries: AsyncIterable<AuditEntry>, t: Translate): Readable {
  const columns = [
    'at',
    'action',
    'outcome',
    'reason',
    'actor',
    'operator',
    'target_username',
    'target_account',
    'client',
    'details',
    'ip',
    'request_id',
  ];
  const wording = auditWording(t);
  const actorName = (entry: AuditEntry) =>
    entry.actor.username ??
    (entry.actor.kind === 'account'
      ? (entry.actor.accountId ?? '')
      : wording.actor(entry.actor.kind));
  const rows = Readable.from(
    (async function* () {
      for await (const entry of entries) {
        const cells = [
          entry.at.toISOString(),
          wording.action(entry.action),
          wording.outcome(entry.outcome),
          entry.reason ? wording.reason(entry.reason) : '',
          actorName(entry),
          entry.actor.operator ? t('audit.operator_yes') : '',
          entry.target.username ?? '',
          entry.target.accountId ?? '',
          entry.target.clientId ?? '',
          entry.details ? JSON.stringify(entry.details) : '',
          entry.ip ?? '',
          entry.requestId ?? '',
        ].map((cell) => defused(String(cell)));
        yield Object.fromEntries(columns.map((key, index) => [key, cells[index]]));
      }
    })(),
  );
  return rows.pipe(
    stringify({
      bom: true,
      delimiter: ';',
      header: true,
      columns: columns.map((key) => ({ key, header: t(`audit.column_${key}`) })),
    }),
  );
}
