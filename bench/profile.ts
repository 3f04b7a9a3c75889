/** Self time per function and per area of a V8 CPU profile (bench/trace.ts). */
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
/** A V8 CPU profile, as the inspector's `Profiler.stop` returns it. */
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Where a function lives: a package name, a file of this repository, or a Node internal. */
function origin(url: string): string {
  if (url === '') return '';
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(url);
  if (modules) return `${modules[1]}/${modules[2]}`;
  const root = path.resolve(import.meta.dirname, '..');
  return url.replace(`file://${root}/`, '');
}

/** The package or top folder a function belongs to, for the totals by area. */
function area(where: string): string {
  if (where === '') return '(native, GC, program)';
  const modules = /^((?:@[^/]+\/)?[^/]+)\//.exec(where);
  if (where.startsWith('node:')) return 'node internals';
  if (/^(src|bench|test)\//.test(where)) return where.split('/').slice(0, 2).join('/');
  return modules?.[1] ?? where;
}

/**
 * Self time per function and per area of a V8 CPU profile, largest first. The samples of
 * the profiler's own `stop` (node:inspector) are left out.
 */
export function selfTimes(profile: CpuProfile) {
  const byNode = new Map(profile.nodes.map((node) => [node.id, node]));
  const functions = new Map<string, number>();
  const areas = new Map<string, number>();
  const add = (map: Map<string, number>, key: string, micros: number) =>
    map.set(key, (map.get(key) ?? 0) + micros);
  let busy = 0;
  profile.samples.forEach((id, index) => {
    const frame = byNode.get(id)!.callFrame;
    const where = origin(frame.url);
    if (frame.functionName === '(idle)' || where.startsWith('node:inspector')) return;
    const micros = profile.timeDeltas[index] ?? 0;
    const name = `${frame.functionName || '(anonymous)'}${where ? ` ${where}:${frame.lineNumber + 1}` : ''}`;
    add(functions, name, micros);
    add(areas, area(where), micros);
    busy += micros;
  });
  const ranked = (map: Map<string, number>, count: number) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, count)
      .map(([key, micros]) => ({ key, ms: micros / 1000, share: micros / busy }));
  return { busyMs: busy / 1000, top: ranked(functions, 15), areas: ranked(areas, 12) };
}
