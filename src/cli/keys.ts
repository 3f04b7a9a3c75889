/**
 * `flueag-idp keys …`: the key file's keys and their rotation in three steps (see
 * oidc/key-rotation.ts). The commands work on the key file alone, not on the database.
 */
import { access } from 'node:fs/promises';
import path from 'node:path';

import type { Command } from 'commander';
import lockfile from 'proper-lockfile';

import { loadConfig, type Config } from '../config.ts';
import { makeDirectory } from '../files.ts';
import {
  activateKeys,
  describeKeys,
  retireKeys,
  rotationTimes,
  stageKeys,
  stampUnknownRetirements,
  type KeyView,
  type RotationTimes,
} from '../oidc/key-rotation.ts';
import { loadKeyMaterial, saveKeyMaterial, type KeyMaterial } from '../oidc/keys.ts';
import type { Output } from './output.ts';

export function keyCommands(cli: Command, output: Output): void {
  const keys = cli
    .command('keys')
    .description('signing and cookie keys, rotated in three steps: rotate, activate, retire');

  keys
    .command('list')
    .description('every key with its use, algorithm, state and since when')
    .action(async () => {
      const config = loadConfig();
      const times = rotationTimes(config);
      const material = await loadKeyMaterial(config.keysFile, false);
      const views = describeKeys(material, times);
      output.result({ keys_file: config.keysFile, keys: views.map(asJson) }, [
        ...table(views),
        ...nextStep(views),
      ]);
    });

  keys
    .command('rotate')
    .description(
      'step 1: stage new signing and cookie keys; servers publish them for verification while the current keys keep signing',
    )
    .action(() =>
      changeKeys(output, async (config, times, now) => {
        if (!(await exists(config.keysFile))) {
          const material = await loadKeyMaterial(config.keysFile, true);
          const views = describeKeys(material, times);
          return {
            material: undefined,
            value: { created: true, staged: [], keys: views.map(asJson) },
            lines: [
              `created ${config.keysFile} with new keys; they sign from the first start on`,
              ...table(views),
            ],
          };
        }
        const { material, staged } = stageKeys(await loadStamped(config, now), now, times);
        const activateFrom = staged[0]!.nextStepAt!;
        return {
          material,
          value: {
            created: false,
            staged: staged.map(asJson),
            activate_from: activateFrom,
            keys: describeKeys(material, times).map(asJson),
          },
          lines: [
            `staged ${staged.map((key) => key.id).join(', ')} in ${config.keysFile}: published for verification, not signing yet`,
            reloadLine(config),
            `next: "flueag-idp keys activate" from ${activateFrom} (KEYS_PUBLISH_SECONDS), so that relying parties that cache the JWKS know the new keys first`,
          ],
        };
      }),
    );

  keys
    .command('activate')
    .description(
      'step 2: the staged keys sign from now on, once published for KEYS_PUBLISH_SECONDS; the keys they replace are retired and keep verifying',
    )
    .option('--force', 'do not wait for the publication (a compromised key)')
    .action((options: { force?: boolean }) =>
      changeKeys(output, async (config, times, now) => {
        const { material, activated, retired } = activateKeys(
          await loadStamped(config, now),
          now,
          times,
          options,
        );
        const retireFrom = retired[0]?.nextStepAt ?? null;
        return {
          material,
          value: {
            activated: activated.map(asJson),
            retired: retired.map(asJson),
            retire_from: retireFrom,
            keys: describeKeys(material, times).map(asJson),
          },
          lines: [
            `${activated.map((key) => key.id).join(', ')} sign from now on`,
            `retired ${retired.map((key) => key.id).join(', ') || 'none'}: they keep verifying what they signed`,
            reloadLine(config),
            ...(retireFrom
              ? [
                  `next: "flueag-idp keys retire" from ${retireFrom}, when nothing they signed is valid any more`,
                ]
              : []),
          ],
        };
      }),
    );

  keys
    .command('retire')
    .description(
      'step 3: remove the retired keys once no ID token, access token or session cookie they signed is valid any more',
    )
    .option('--force', 'remove every retired key now (a compromised key)')
    .action((options: { force?: boolean }) =>
      changeKeys(output, async (config, times, now) => {
        const { material, removed, kept } = retireKeys(
          await loadStamped(config, now),
          now,
          times,
          options,
        );
        return {
          material: removed.length > 0 ? material : undefined,
          value: {
            removed: removed.map(asJson),
            kept: kept.map(asJson),
            keys: describeKeys(material, times).map(asJson),
          },
          lines: [
            removed.length > 0
              ? `removed ${removed.map((key) => key.id).join(', ')} from ${config.keysFile}`
              : 'no retired keys: nothing to remove',
            ...kept.map(
              (key) => `kept ${key.id}: it may still verify, removable from ${key.nextStepAt}`,
            ),
            ...(removed.length > 0 ? [reloadLine(config)] : []),
          ],
        };
      }),
    );
}

interface Change {
  /** The key material to write; undefined when the file stays as it is. */
  material: KeyMaterial | undefined;
  value: Record<string, unknown>;
  lines: string[];
}

/**
 * Runs one step on the key file under a lock, so that two operators cannot both change it
 * and one lose the other's keys, and writes the result atomically.
 */
async function changeKeys(
  output: Output,
  step: (config: Config, times: RotationTimes, now: Date) => Promise<Change>,
): Promise<void> {
  const config = loadConfig();
  const file = config.keysFile;
  await makeDirectory(path.dirname(file), 0o700);
  const release = await lockfile.lock(file, {
    realpath: false,
    retries: { retries: 20, minTimeout: 50, maxTimeout: 500 },
  });
  try {
    const change = await step(config, rotationTimes(config), new Date());
    if (change.material) await saveKeyMaterial(file, change.material);
    output.result(
      {
        keys_file: file,
        reload_within_seconds: config.keys.reloadSeconds > 0 ? config.keys.reloadSeconds : null,
        restart_required: config.keys.reloadSeconds === 0 && change.material !== undefined,
        ...change.value,
      },
      change.lines,
    );
  } finally {
    await release();
  }
}

/**
 * The key file, with retirements of unknown time counted from now and written so, before a
 * step that may refuse: the clock of a file from before key states starts at once.
 */
async function loadStamped(config: Config, now: Date): Promise<KeyMaterial> {
  const material = await loadKeyMaterial(config.keysFile, false);
  if (stampUnknownRetirements(material, now)) await saveKeyMaterial(config.keysFile, material);
  return material;
}

function reloadLine(config: Config): string {
  return config.keys.reloadSeconds > 0
    ? `running servers use the changed file within ${config.keys.reloadSeconds} s (KEYS_RELOAD_SECONDS); no restart needed`
    : 'KEYS_RELOAD_SECONDS is 0: restart every flueag-idp server now, one after the other';
}

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

function asJson(view: KeyView) {
  return {
    id: view.id,
    use: view.use,
    alg: view.alg,
    state: view.state,
    since: view.since,
    next_step_at: view.nextStepAt,
  };
}

function table(views: KeyView[]): string[] {
  const rows = [
    ['id', 'use', 'alg', 'state', 'since'],
    ...views.map((view) => [
      view.id,
      view.use,
      view.alg,
      view.state,
      view.since ?? 'unknown (retired before key states were recorded)',
    ]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) =>
    row
      .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!)))
      .join('  '),
  );
}

/** What the operator can do next, after the table of `keys list`. */
function nextStep(views: KeyView[]): string[] {
  const staged = views.filter((view) => view.state === 'staged');
  if (staged.length > 0)
    return [`staged keys: "flueag-idp keys activate" from ${latestOf(staged)}`];
  const retired = views.filter((view) => view.state === 'retired');
  if (retired.length > 0)
    return [
      `retired keys: "flueag-idp keys retire" removes them from ${earliestOf(retired) ?? 'the next keys command on'}`,
    ];
  return ['no rotation under way: "flueag-idp keys rotate" stages new keys'];
}

const latestOf = (views: KeyView[]) =>
  views
    .map((view) => view.nextStepAt)
    .filter(Boolean)
    .sort()
    .at(-1);

const earliestOf = (views: KeyView[]) =>
  views
    .map((view) => view.nextStepAt)
    .filter(Boolean)
    .sort()[0];
