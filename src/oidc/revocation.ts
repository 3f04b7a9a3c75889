/**
 * Ends everything an account holds at the provider: sessions, grants and the codes and
 * tokens issued under them. The library has no API for this (oidc-provider #652); it works
 * on the adapter's collections, which carry `accountId` and `grantId` for this purpose.
 */
import type { Db } from 'mongodb';

import type { AccessRevoker, RevokeExceptions } from '../accounts/service.ts';
import {
  collectionName,
  grantBoundModels,
  SESSION_UID_COLLECTION,
  type StoredRecord,
} from './adapter.ts';

/** What the provider and the console hold for people who signed in, in deletion order. */
const signedInCollections = [
  ...['Grant', ...grantBoundModels, 'Session', 'Interaction', 'PushedAuthorizationRequest'].map(
    collectionName,
  ),
  SESSION_UID_COLLECTION,
  // Console sessions end with their grant already; deleting them leaves nothing behind.
  'console_sessions',
];

export class ProviderAccessRevoker implements AccessRevoker {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  #collection(model: string) {
    return this.#db.collection<StoredRecord>(collectionName(model));
  }

  /**
   * Deletes the account's grants first: opaque access tokens and refresh tokens are checked
   * against their Grant, so they fail from this moment even before the token records go.
   * JWT access tokens cannot be recalled; their lifetime is minutes.
   */
  async revokeAccount(accountId: string, options: RevokeExceptions = {}): Promise<void> {
    const kept = options.exceptGrantId;
    const grants = await this.#collection('Grant')
      .find({ accountId }, { projection: { _id: 1 } })
      .toArray();
    const grantIds = grants.map((grant) => grant._id).filter((id) => id !== kept);
    await this.#collection('Grant').deleteMany(
      kept === undefined ? { accountId } : { accountId, _id: { $ne: kept } },
    );

    for (const model of grantBoundModels) {
      await this.#collection(model).deleteMany(
        kept === undefined
          ? { $or: [{ accountId }, { grantId: { $in: grantIds } }] }
          : { $or: [{ accountId, grantId: { $ne: kept } }, { grantId: { $in: grantIds } }] },
      );
    }

    const sessions =
      options.exceptSessionUid === undefined
        ? { accountId }
        : { accountId, uid: { $ne: options.exceptSessionUid } };
    await this.#collection('Session').deleteMany(sessions);
  }

  /**
   * Ends every session and revokes every grant, code and token of every account, as after
   * the restore of an older backup or the compromise of a key. Grants go first, as above.
   * Returns how many records each collection lost.
   */
  async revokeEveryone(): Promise<Record<string, number>> {
    const removed: Record<string, number> = {};
    for (const name of signedInCollections)
      removed[name] = (await this.#db.collection(name).deleteMany({})).deletedCount;
    return removed;
  }
}
