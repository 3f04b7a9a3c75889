/**
 * Directories and file errors of the data directory and the key file, in words an operator
 * acts on.
 */
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';

/**
 * Why a file could not be opened, in words an operator acts on instead of an errno code.
 * `purpose` says whether the file was to be read or to be created.
 */
export function describeFileError(error: unknown, purpose: 'read' | 'create'): string {
  switch ((error as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return purpose === 'read' ? 'the file does not exist' : 'its directory does not exist';
    case 'EISDIR':
      return 'it is a directory, not a file';
    case 'ENOTDIR':
      return 'a part of the path is not a directory';
    case 'EACCES':
    case 'EPERM':
      return purpose === 'read'
        ? 'permission denied; the file must be readable by this user'
        : 'permission denied; the directory must be writable by this user';
    case 'EROFS':
      return 'the file system is read-only';
    case 'ENOSPC':
      return 'the disk is full';
    case 'EEXIST':
      return 'the file exists already; an existing file is never overwritten, choose a new name';
    default:
      return error instanceof Error ? error.message : String(error);
  }
}

/**
 * Creates `dir` and its missing parents, one level at a time. Node's own recursive `mkdir`
 * never returns where the kernel answers ENOENT for a parent that exists (below /proc), so
 * a DATA_DIR there would hang the start.
 */
export async function makeDirectory(dir: string, mode?: number): Promise<void> {
  try {
    await mkdir(dir, { mode });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      if ((await stat(dir)).isDirectory()) return;
      throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${dir}'`), {
        code: 'ENOTDIR',
        syscall: 'mkdir',
        path: dir,
      });
    }
    const parent = path.dirname(dir);
    if (code !== 'ENOENT' || parent === dir) throw error;
    await makeDirectory(parent, mode);
    await mkdir(dir, { mode }).catch((again: NodeJS.ErrnoException) => {
      if (again.code !== 'EEXIST') throw again;
    });
  }
}
