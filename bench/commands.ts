/**
 * The database commands of one operation, from the driver's command monitoring: collection,
 * filter shape, whether FerretDB 1.24 hands the filter to SQLite, and duration, by the HTTP
 * request they served (bench/trace.ts).
 *
 * FerretDB passes only a filter of exactly one key `_id` with a string or ObjectId value to
 * SQLite, and SQLite then still reads the `_id` of every row (FerretDB's `_id` index is on
 * another expression than its query). Any other filter, and every sort, also decodes every
 * document in Go: such commands are marked `decodes all`.
 */
import { ObjectId, type CommandStartedEvent, type CommandSucceededEvent } from 'mongodb';

import type { TestServer } from '../test/support/server.ts';

/** One database command as the driver saw it. */
export interface Traced {
  step: string;
  command: string;
  collection: string;
  shape: string;
  scan: boolean;
  ms: number;
}

const isOperator = (key: string) => key.startsWith('$');

/** The keys and operators of a filter, without its values: `{tenantId, usernameKey}`. */
export function filterShape(filter: unknown): string {
  // The driver hands a sort on as a Map of its keys.
  if (filter instanceof Map) return filterShape(Object.fromEntries(filter));
  if (filter === null || typeof filter !== 'object' || Array.isArray(filter)) return '';
  const parts = Object.entries(filter as Record<string, unknown>).map(([key, value]) => {
    if (Array.isArray(value) && isOperator(key))
      return `${key}: [${value.map(filterShape).join(', ')}]`;
    if (
      value !== null &&
      typeof value === 'object' &&
      !(value instanceof Date) &&
      !(value instanceof ObjectId) &&
      Object.keys(value).some(isOperator)
    )
      return `${key}: {${Object.keys(value).join(', ')}}`;
    return key;
  });
  return `{${parts.join(', ')}}`;
}

/** True when FerretDB's SQLite backend answers `filter` by primary key (see above). */
function byPrimaryKey(filter: unknown): boolean {
  if (filter === null || typeof filter !== 'object') return false;
  const keys = Object.keys(filter);
  const id = (filter as { _id?: unknown })._id;
  return (
    keys.length === 1 && keys[0] === '_id' && (typeof id === 'string' || id instanceof ObjectId)
  );
}

/** The collection, the filter and whether the command reads by filter at all. */
function describe(event: CommandStartedEvent): Omit<Traced, 'step' | 'ms'> {
  const c = event.command as Record<string, unknown>;
  const name = event.commandName;
  const collection = typeof c[name] === 'string' ? (c[name] as string) : '';
  const first = (list: unknown, field: string) =>
    Array.isArray(list) ? (list[0] as Record<string, unknown> | undefined)?.[field] : undefined;
  const filtered = (filter: unknown, extra = '') => ({
    command: name,
    collection,
    shape: `${filterShape(filter)}${extra}`,
    scan: !byPrimaryKey(filter) || extra.includes('sort'),
  });
  switch (name) {
    case 'find':
      return filtered(c.filter, c.sort ? ` sort ${filterShape(c.sort)}` : '');
    case 'findAndModify':
      return filtered(c.query, c.remove ? ' remove' : c.upsert ? ' upsert' : '');
    case 'update': {
      const upsert = first(c.updates, 'upsert') === true ? ' upsert' : '';
      return filtered(first(c.updates, 'q'), upsert);
    }
    case 'delete':
      return filtered(first(c.deletes, 'q'));
    case 'count':
    case 'distinct':
      return filtered(c.query ?? {});
    case 'aggregate':
      return filtered((first(c.pipeline, '$match') as unknown) ?? {});
    case 'insert': {
      const count = Array.isArray(c.documents) ? c.documents.length : 0;
      return { command: name, collection, shape: `${count} document(s)`, scan: false };
    }
    default:
      return { command: name, collection, shape: '', scan: false };
  }
}

/** Records every command of the server's connection under the step that is running. */
export class CommandTrace {
  step = '';
  readonly #started = new Map<number, Omit<Traced, 'ms'>>();
  commands: Traced[] = [];

  constructor(test: TestServer) {
    const client = test.services.connection.getClient();
    client.on('commandStarted', (event: CommandStartedEvent) => {
      this.#started.set(event.requestId, { step: this.step, ...describe(event) });
    });
    client.on('commandSucceeded', (event: CommandSucceededEvent) => this.#end(event));
    client.on('commandFailed', (event) => this.#end(event));
  }

  #end(event: { requestId: number; duration: number }) {
    const started = this.#started.get(event.requestId);
    this.#started.delete(event.requestId);
    if (started && started.step) this.commands.push({ ...started, ms: event.duration });
  }
}

/**
 * Names the step after each HTTP request the load generator sends: the operations run one
 * at a time, so every command started meanwhile belongs to it.
 */
export function labelRequests(trace: CommandTrace) {
  const original = globalThis.fetch;
  globalThis.fetch = (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
    const route = url.pathname.replace(/\/interaction\/[^/]+/, '/interaction/:uid');
    if (trace.step) trace.step = `${trace.step.split(' › ')[0]} › ${method} ${route}`;
    return original(input, init);
  };
}

const fixed = (ms: number) => ms.toFixed(1);

/** The commands as a Markdown table, with their count and total duration. */
export function commandTable(commands: Traced[]): string {
  const rows = commands.map(
    (c) =>
      `| ${c.step.split(' › ')[1] ?? ''} | ${c.command} | ${c.collection} | \`${c.shape}\` | ${c.scan ? 'decodes all' : 'by _id'} | ${fixed(c.ms)} |`,
  );
  const total = commands.reduce((sum, c) => sum + c.ms, 0);
  const scans = commands.filter((c) => c.scan).length;
  return [
    '| request | command | collection | filter | FerretDB | ms |',
    '| --- | --- | --- | --- | --- | ---: |',
    ...rows,
    '',
    `${commands.length} commands, ${scans} of them decoding every document, ${fixed(total)} ms in the database.`,
  ].join('\n');
}
