/** Reading operator CSV files (UTF-8, comma or semicolon, with a header row). */
import { readFile } from 'node:fs/promises';

import { parse } from 'csv-parse/sync';

import { describeFileError } from '../files.ts';

/** A file the operator named cannot be used; the message says why. */
export class InputFileError extends Error {
  override name = 'InputFileError';
}

export type CsvRecord = Record<string, string> & { line: number };

export interface CsvContent {
  records: CsvRecord[];
  /** Rows that do not have as many fields as the header, by line number. */
  malformed: number[];
}

const MAX_BYTES = 10 * 1024 * 1024;

/**
 * Reads `file` and checks that the header names every column in `required` (in any
 * order, any case). Spreadsheet exports in Windows-1252 are refused with a clear message
 * instead of being read as garbled names.
 */
export async function readCsv(file: string, required: readonly string[]): Promise<CsvContent> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw new InputFileError(`cannot read ${file}: ${describeFileError(error, 'read')}`);
  }
  if (bytes.length > MAX_BYTES) throw new InputFileError(`${file} is larger than 10 MB`);

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new InputFileError(`${file} is not UTF-8 text; export it as "CSV UTF-8"`);
  }
  if (text.includes('\0'))
    throw new InputFileError(`${file} contains NUL bytes; it is not a CSV text file`);

  const headerLine = text.replace(/^\uFEFF/, '').split(/\r?\n/, 1)[0] ?? '';
  const delimiter = headerLine.includes(';') && !headerLine.includes(',') ? ';' : ',';
  let rows: Array<{ record: string[]; info: { lines: number } }>;
  try {
    rows = parse(text, {
      bom: true,
      delimiter,
      relax_column_count: true,
      skip_empty_lines: true,
      info: true,
    }) as never;
  } catch (error) {
    throw new InputFileError(`${file} is not valid CSV: ${(error as Error).message}`);
  }

  const [header, ...data] = rows;
  if (!header) throw new InputFileError(`${file} is empty`);
  const columns = header.record.map((name) => name.trim().toLowerCase());
  const missing = required.filter((name) => !columns.includes(name));
  if (missing.length > 0)
    throw new InputFileError(
      `${file} lacks the column(s) ${missing.join(', ')}; expected ${required.join(',')}`,
    );

  const records: CsvRecord[] = [];
  const malformed: number[] = [];
  for (const { record, info } of data) {
    if (record.length !== columns.length) {
      malformed.push(info.lines);
      continue;
    }
    // Spaces around a value come from hand-edited files ("a, b"), never from the value.
    const entry = Object.fromEntries(
      columns.map((name, index) => [name, record[index]?.trim() ?? '']),
    ) as CsvRecord;
    entry.line = info.lines;
    records.push(entry);
  }
  return { records, malformed };
}
