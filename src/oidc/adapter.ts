/**
 * Storage of the provider's models (sessions, grants, codes, tokens, interactions, clients)
 * in MongoDB, one collection per model. Written for MongoDB and FerretDB alike:
 *
 * - the payload is stored as a JSON string, because its keys may hold `.` and `$`
 *   (resource indicators, client ids) and FerretDB rejects such field names; the fields the
 *   provider and our revocation query by are copied beside it;
 * - expiry is enforced on read and by housekeeping, because FerretDB has no TTL indexes;
 * - `consume` inserts a marker with a unique `_id` into `oidc_consumption`: of parallel
 *   redemptions exactly one insert succeeds (the library checks `consumed` and consumes in
 *   two steps, and a conditional update is not atomic on FerretDB, see db/leases.ts).
 */
import type { Collection, Db } from 'mongodb';
import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';

export interface StoredRecord {
  _id: string;
  data: string;
  expiresAt: Date | null;
  consumed: number | null;
  grantId: string | null;
  accountId: string | null;
  uid: string | null;
  userCode: string | null;
}

/** The collection that holds the provider model `name`, e.g. `AuthorizationCode`. */
export const collectionName = (name: string) =>
  `oidc_${name.replace(/(?<!^)([A-Z])/g, '_$1').toLowerCase()}`;

/** The models that are looked up by grant and revoked with it. */
export const grantBoundModels = [
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
];

/** Every model the provider may store; housekeeping and index creation walk this list. */
export const providerModels = [
  'Session',
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'ClientCredentials',
  'Client',
  'InitialAccessToken',
  'RegistrationAccessToken',
  'Interaction',
  'ReplayDetection',
  'PushedAuthorizationRequest',
  'Grant',
  'BackchannelAuthenticationRequest',
];

interface ConsumptionMarker {
  _id: string;
  expiresAt: Date;
}

/** What the adapter tells the provider about revocations it performs or observes. */
export interface AdapterHooks {
  /** A Grant record was deleted; `accountId` is whom it belonged to. */
  onGrantDeleted?: (grantId: string, accountId: string | null) => void;
  /** A grant was revoked because one of its codes or tokens was used twice in parallel. */
  onReuse?: (grantId: string) => void;
}

export class MongoAdapter implements Adapter {
  readonly #name: string;
  readonly #collection: Collection<StoredRecord>;
  readonly #consumptions: Collection<ConsumptionMarker>;
  readonly #db: Db;
  readonly #now: () => number;
  readonly #hooks: AdapterHooks;

  constructor(db: Db, name: string, options: { now?: () => number } & AdapterHooks = {}) {
    this.#db = db;
    this.#name = name;
    this.#collection = db.collection<StoredRecord>(collectionName(name));
    this.#consumptions = db.collection<ConsumptionMarker>('oidc_consumption');
    this.#now = options.now ?? Date.now;
    this.#hooks = options;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    const record: Omit<StoredRecord, '_id' | 'consumed'> = {
      data: JSON.stringify(payload),
      expiresAt: expiresIn ? new Date(this.#now() + expiresIn * 1000) : null,
      grantId: payload.grantId ?? null,
      accountId: payload.accountId ?? null,
      uid: payload.uid ?? null,
      userCode: payload.userCode ?? null,
    };
    // `consumed` only ever goes from unset to set; a re-save must not clear it.
    const consumed = payload.consumed ? { consumed: Number(payload.consumed) } : {};
    await this.#collection.updateOne(
      { _id: id },
      { $set: { ...record, ...consumed } },
      { upsert: true },
    );
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    return this.#payload(await this.#collection.findOne({ _id: id }));
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.#payload(await this.#collection.findOne({ uid }));
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.#payload(await this.#collection.findOne({ userCode }));
  }

  /**
   * Marks a code or refresh token as used. A second use, also a parallel one, fails and
   * revokes the grant it belongs to, as the library does when it sees a reused token
   * (RFC 6749 §4.1.2, OAuth 2.0 Security BCP §4.14).
   */
  async consume(id: string): Promise<void> {
    const record = await this.#collection.findOne(
      { _id: id },
      { projection: { expiresAt: 1, grantId: 1 } },
    );
    const expiresAt = record?.expiresAt ?? new Date(this.#now() + 86_400_000);
    try {
      await this.#consumptions.insertOne({ _id: `${this.#name}:${id}`, expiresAt });
    } catch (error) {
      if ((error as { code?: number }).code !== 11000) throw error;
      if (record?.grantId) {
        const owner = await revokeGrantRecords(this.#db, record.grantId);
        this.#hooks.onGrantDeleted?.(record.grantId, owner);
        this.#hooks.onReuse?.(record.grantId);
      }
      throw new errors.InvalidGrant('already used; its grant was revoked');
    }
    await this.#collection.updateOne(
      { _id: id },
      { $set: { consumed: Math.floor(this.#now() / 1000) } },
    );
  }

  async destroy(id: string): Promise<void> {
    if (this.#name !== 'Grant') {
      await this.#collection.deleteOne({ _id: id });
      return;
    }
    // Without a projection: FerretDB 1.24 refuses `fields` on findAndModify.
    const grant = await this.#collection.findOneAndDelete({ _id: id });
    this.#hooks.onGrantDeleted?.(id, grant?.accountId ?? null);
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    await this.#collection.deleteMany({ grantId });
  }

  #payload(record: StoredRecord | null): AdapterPayload | undefined {
    if (!record) return undefined;
    if (record.expiresAt && record.expiresAt.getTime() <= this.#now()) return undefined;
    const payload = JSON.parse(record.data) as AdapterPayload;
    return record.consumed ? { ...payload, consumed: record.consumed } : payload;
  }
}

/**
 * Deletes a grant and every code and token issued under it, and returns the account the
 * grant belonged to. Deleting the Grant first makes opaque access tokens and refresh tokens
 * fail at once: the provider checks their Grant.
 */
export async function revokeGrantRecords(db: Db, grantId: string): Promise<string | null> {
  const grant = await db
    .collection<StoredRecord>(collectionName('Grant'))
    .findOneAndDelete({ _id: grantId });
  for (const model of grantBoundModels) {
    await db.collection<StoredRecord>(collectionName(model)).deleteMany({ grantId });
  }
  return grant?.accountId ?? null;
}

/** Creates the indexes the adapter, revocation and housekeeping query by. Idempotent. */
export async function createAdapterIndexes(db: Db): Promise<void> {
  for (const name of providerModels) {
    const collection = db.collection(collectionName(name));
    await collection.createIndex({ expiresAt: 1 });
    if (grantBoundModels.includes(name)) await collection.createIndex({ grantId: 1 });
    if (['Session', 'Grant', ...grantBoundModels].includes(name))
      await collection.createIndex({ accountId: 1 });
  }
  await db.collection('oidc_consumption').createIndex({ expiresAt: 1 });
  await db.collection('leases').createIndex({ expiresAt: 1 });
  await db.collection(collectionName('Session')).createIndex({ uid: 1 });
  await db.collection(collectionName('DeviceCode')).createIndex({ userCode: 1 });
}
