/** Importing the register of authorities (`id,name,kind,parent`), parents before children. */
import type { RequestContext } from '../audit/trail.ts';
import { AppError, ValidationError } from '../errors.ts';
import type { TenantDirectory } from './directory.ts';

export interface TenantRow {
  line: number;
  id?: string | undefined;
  name?: string | undefined;
  kind?: string | undefined;
  parent?: string | undefined;
}

export type TenantRowOutcome =
  | { line: number; outcome: 'imported' | 'already_present'; tenantId: string }
  | { line: number; outcome: 'rejected'; tenantId: string | null; reasons: string[] };

export const tenantColumns = ['id', 'name', 'kind', 'parent'] as const;

/**
 * Adds every row whose parent exists or is added earlier in the same file, in as many
 * passes as the file needs, so the order of rows does not matter. Once `stop` is aborted,
 * the row under way is finished and the rest left out.
 */
export async function importTenants(
  directory: TenantDirectory,
  rows: TenantRow[],
  context: RequestContext,
  stop?: AbortSignal,
): Promise<TenantRowOutcome[]> {
  const outcomes = new Map<number, TenantRowOutcome>();
  const inFile = new Set(rows.map((row) => row.id?.trim()).filter(Boolean));
  let pending = rows;

  while (pending.length > 0) {
    const waiting: TenantRow[] = [];
    for (const row of pending) {
      if (stop?.aborted) break;
      const parent = row.parent?.trim() || null;
      if (
        parent &&
        inFile.has(parent) &&
        !(await directory.find(parent)) &&
        !failed(outcomes, rows, parent)
      ) {
        waiting.push(row);
        continue;
      }
      outcomes.set(row.line, await importRow(directory, row, parent, context));
    }
    if (stop?.aborted) break;
    if (waiting.length === pending.length) {
      for (const row of waiting) {
        outcomes.set(row.line, {
          line: row.line,
          outcome: 'rejected',
          tenantId: row.id?.trim() || null,
          reasons: ['tenant_parent.cycle'],
        });
      }
      break;
    }
    pending = waiting;
  }
  // Rows left out by a stop have no outcome.
  return rows.flatMap((row) => outcomes.get(row.line) ?? []);
}

function failed(outcomes: Map<number, TenantRowOutcome>, rows: TenantRow[], id: string): boolean {
  const row = rows.find((candidate) => candidate.id?.trim() === id);
  return row !== undefined && outcomes.get(row.line)?.outcome === 'rejected';
}

async function importRow(
  directory: TenantDirectory,
  row: TenantRow,
  parent: string | null,
  context: RequestContext,
): Promise<TenantRowOutcome> {
  try {
    const { tenant, created } = await directory.add(
      { id: row.id, name: row.name, kind: row.kind, parent },
      context,
    );
    return {
      line: row.line,
      outcome: created ? 'imported' : 'already_present',
      tenantId: tenant._id,
    };
  } catch (error) {
    const tenantId = row.id?.trim() || null;
    if (error instanceof ValidationError)
      return {
        line: row.line,
        outcome: 'rejected',
        tenantId,
        reasons: Object.values(error.fields).flat(),
      };
    if (error instanceof AppError)
      return { line: row.line, outcome: 'rejected', tenantId, reasons: [error.code] };
    throw error;
  }
}
