/**
 * Builds and runs FerretDB, the MongoDB-wire-compatible server (SQLite backend) that
 * development, tests and the embedded default use in place of MongoDB.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { cp, chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { makeDirectory } from '../files.ts';

const run = promisify(execFile);

export const FERRETDB_MODULE = 'github.com/FerretDB/FerretDB';
export const FERRETDB_VERSION = 'v1.24.2';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));
const toolsDir = path.join(projectRoot, '.tools');
export const ferretdbBinary = path.join(toolsDir, 'bin', 'ferretdb');

export class FerretDBError extends Error {
  override name = 'FerretDBError';
}

/** Returns the path of a FerretDB binary of the pinned version, building it when missing. */
export async function ensureFerretDB(log: (message: string) => void = () => {}): Promise<string> {
  if (await binaryHasPinnedVersion()) return ferretdbBinary;

  log(
    `building FerretDB ${FERRETDB_VERSION} into ${path.relative(projectRoot, ferretdbBinary)} (once)`,
  );
  await buildFerretDB();
  if (!(await binaryHasPinnedVersion())) {
    throw new FerretDBError(
      `the FerretDB binary built at ${ferretdbBinary} does not report ${FERRETDB_VERSION}`,
    );
  }
  return ferretdbBinary;
}

async function binaryHasPinnedVersion(): Promise<boolean> {
  if (!existsSync(ferretdbBinary)) return false;
  try {
    const { stdout } = await run(ferretdbBinary, ['--version'], { timeout: 10_000 });
    return stdout.includes(`version: ${FERRETDB_VERSION}`);
  } catch {
    return false;
  }
}

/**
 * Builds from the Go module proxy with the ordinary Go client. A plain
 * `go install …/cmd/ferretdb@v1.24.2` produces a binary that panics at start, because the
 * published module lacks the generated `build/version/version.txt` that FerretDB's own build
 * writes; so the verified module source is copied out of the module cache, that one file is
 * added, and the copy is built.
 */
async function buildFerretDB(): Promise<void> {
  const env = { ...process.env, GOTOOLCHAIN: 'local', GOFLAGS: '-mod=readonly -buildvcs=false' };
  const go = await findGo(env);

  const { stdout } = await run(
    go,
    ['mod', 'download', '-json', `${FERRETDB_MODULE}@${FERRETDB_VERSION}`],
    {
      env,
      maxBuffer: 1 << 20,
      timeout: 30 * 60_000,
    },
  );
  const moduleDir = (JSON.parse(stdout) as { Dir?: string }).Dir;
  if (!moduleDir) throw new FerretDBError(`go mod download did not return a directory: ${stdout}`);

  const sourceDir = path.join(toolsDir, 'src', `ferretdb-${FERRETDB_VERSION}`);
  await rm(sourceDir, { recursive: true, force: true });
  await mkdir(path.dirname(sourceDir), { recursive: true });
  await cp(moduleDir, sourceDir, { recursive: true });
  await chmod(sourceDir, 0o755);
  await run('chmod', ['-R', 'u+w', sourceDir]);
  await writeFile(path.join(sourceDir, 'build', 'version', 'version.txt'), `${FERRETDB_VERSION}\n`);

  await mkdir(path.dirname(ferretdbBinary), { recursive: true });
  await run(go, ['build', '-trimpath', '-o', ferretdbBinary, './cmd/ferretdb'], {
    cwd: sourceDir,
    env,
    maxBuffer: 16 << 20,
    timeout: 30 * 60_000,
  });
}

async function findGo(env: NodeJS.ProcessEnv): Promise<string> {
  try {
    await run('go', ['version'], { env, timeout: 10_000 });
    return 'go';
  } catch {
    throw new FerretDBError(
      `FerretDB ${FERRETDB_VERSION} is not built yet and no Go toolchain was found to build it. ` +
        'Either install Go 1.22 or newer (https://go.dev/dl/) so that it can be built into .tools/bin, ' +
        'or set MONGODB_URI to a MongoDB 6+ replica set.',
    );
  }
}

/** A running FerretDB child process. */
export interface FerretDBProcess {
  uri: string;
  port: number;
  pid: number;
  /** Settles when the process exits, for whatever reason. */
  exited: Promise<FerretDBExit>;
  /** FerretDB's debug listener on loopback: metrics and Go's pprof under /debug/pprof. */
  debugUrl: string;
  stop(): Promise<void>;
}

export interface FerretDBExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Starts FerretDB on loopback with its SQLite files and state under `dir`. Every flag is
 * passed explicitly (FerretDB's own defaults target a PostgreSQL backend and fixed ports),
 * telemetry is disabled, and `FERRETDB_*` variables of the parent are not inherited.
 */
export async function startFerretDB(dir: string, port?: number): Promise<FerretDBProcess> {
  const binary = await ensureFerretDB((message) => process.stderr.write(`${message}\n`));
  const dataDir = path.join(dir, 'data');
  const stateDir = path.join(dir, 'state');
  await makeDirectory(dataDir);
  await makeDirectory(stateDir);

  const listenPort = port ?? (await freePort());
  const debugPort = await freePort();
  const args = [
    '--handler=sqlite',
    `--sqlite-url=file:${dataDir}/`,
    `--state-dir=${stateDir}`,
    `--listen-addr=127.0.0.1:${listenPort}`,
    `--debug-addr=127.0.0.1:${debugPort}`,
    '--telemetry=disable',
    // At `warn` FerretDB logs every command it does not know (the driver's `endSessions`)
    // and every "already exists" reply, from every CLI run, so `ferretdb.log` would grow
    // without bound; errors are what an operator needs to see there.
    '--log-level=error',
    '--log-format=json',
  ];
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('FERRETDB_')),
  );
  const logFd = openSync(path.join(dir, 'ferretdb.log'), 'a');
  const child = spawn(binary, args, { env, stdio: ['ignore', logFd, logFd], detached: false });
  closeSync(logFd);
  const exited = new Promise<FerretDBExit>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );

  await waitForPort(child, listenPort);
  return {
    uri: `mongodb://127.0.0.1:${listenPort}/`,
    port: listenPort,
    pid: child.pid ?? 0,
    exited,
    debugUrl: `http://127.0.0.1:${debugPort}`,
    stop: () => stopChild(child),
  };
}

/** Asks the kernel for a free loopback port. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(child: ChildProcess, port: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: number | null = null;
  child.once('exit', (code) => (exited = code ?? -1));

  while (Date.now() < deadline) {
    if (exited !== null)
      throw new FerretDBError(`FerretDB exited with code ${exited} while starting`);
    if (await canConnect(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill('SIGKILL');
  throw new FerretDBError(`FerretDB did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
