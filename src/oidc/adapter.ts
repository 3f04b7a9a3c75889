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
 *   two steps, and a conditional update is not atomic on FerretDB, see db/leases.ts);
 * - every look-up the library makes on a hot path is by `_id` alone, the only filter that
 *   FerretDB 1.24 hands to SQLite; any other filter reads and decodes every document of the
 *   collection. A Session is found by its `uid` through a small entry in `oidc_session_uid`
 *   whose `_id` is that uid, and the record it names is checked against it.
 */
import type { Collection, Db, Filter, OptionalUnlessRequiredId, UpdateFilter } from 'mongodb';
import Provider, { errors, type Adapter, type AdapterPayload } from 'oidc-provider';

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

/** Where the Session with a given `uid` is stored (a session keeps its uid when its id changes). */
interface SessionUidEntry {
  _id: string;
  sessionId: string;
  expiresAt: Date | null;
}

/** The collection of the uid entries; housekeeping removes them with their sessions' expiry. */
export const SESSION_UID_COLLECTION = 'oidc_session_uid';

/**
 * What `find` read of a record in the current provider request, by model and id: `consume`
 * needs the expiry and grant of the code or refresh token that the library has just found,
 * and both never change for one id. Kept per request (the provider's context), never across.
 */
const seenInRequest = new WeakMap<
  object,
  Map<string, Pick<StoredRecord, 'expiresAt' | 'grantId'>>
>();

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
  readonly #sessionUids: Collection<SessionUidEntry>;
  readonly #db: Db;
  readonly #now: () => number;
  readonly #hooks: AdapterHooks;

  constructor(db: Db, name: string, options: { now?: () => number } & AdapterHooks = {}) {
    this.#db = db;
    this.#name = name;
    this.#collection = db.collection<StoredRecord>(collectionName(name));
    this.#consumptions = db.collection<ConsumptionMarker>('oidc_consumption');
    this.#sessionUids = db.collection<SessionUidEntry>(SESSION_UID_COLLECTION);
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
    // An interaction is saved again at each of its steps; every other record mostly once.
    const insertFirst = this.#name !== 'Interaction';
    const created = await store(this.#collection, id, { ...record, ...consumed }, { insertFirst });
    // After the record: an entry never names a session that was not stored. A new session
    // mostly brings a new uid; one whose id was renewed keeps its uid.
    if (this.#name === 'Session' && record.uid !== null) {
      await store(
        this.#sessionUids,
        record.uid,
        { sessionId: id, expiresAt: record.expiresAt },
        { insertFirst: created },
      );
    }
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    const record = await this.#collection.findOne({ _id: id });
    const ctx = Provider.ctx;
    if (record && ctx) {
      let seen = seenInRequest.get(ctx);
      if (!seen) seenInRequest.set(ctx, (seen = new Map()));
      seen.set(`${this.#name}:${id}`, { expiresAt: record.expiresAt, grantId: record.grantId });
    }
    return this.#payload(record);
  }

  /**
   * The Session with `uid`, through its uid entry. A session stored before the entries
   * existed, or one whose entry is missing or names another record, is searched by `uid`
   * as before, which reads the whole collection on FerretDB but gives the same answer.
   */
  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    if (this.#name === 'Session') {
      const entry = await this.#sessionUids.findOne({ _id: uid });
      const record = entry ? await this.#collection.findOne({ _id: entry.sessionId }) : null;
      const payload = record?.uid === uid ? this.#payload(record) : undefined;
      if (payload) return payload;
    }
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
    const ctx = Provider.ctx;
    const record =
      (ctx && seenInRequest.get(ctx)?.get(`${this.#name}:${id}`)) ??
      (await this.#collection.findOne({ _id: id }, { projection: { expiresAt: 1, grantId: 1 } }));
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
 * Stores `fields` under `id`, keeping fields of an existing document that `fields` lacks;
 * returns true when the document is new. With `insertFirst` it inserts and updates only when
 * the id exists: FerretDB answers an update, also one by `_id`, by reading every row of the
 * table, while an insert only checks the unique `_id` index. MongoDB answers both from the
 * index, and the failed insert of an existing id costs it one round trip.
 */
async function store<T extends { _id: string }>(
  collection: Collection<T>,
  id: string,
  fields: Partial<Omit<T, '_id'>>,
  options: { insertFirst: boolean },
): Promise<boolean> {
  if (options.insertFirst) {
    try {
      await collection.insertOne({ _id: id, ...fields } as unknown as OptionalUnlessRequiredId<T>);
      return true;
    } catch (error) {
      if ((error as { code?: number }).code !== 11000) throw error;
    }
  }
  const result = await collection.updateOne(
    { _id: id } as Filter<T>,
    { $set: fields } as unknown as UpdateFilter<T>,
    { upsert: true },
  );
  return result.upsertedCount === 1;
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
  await db.collection(SESSION_UID_COLLECTION).createIndex({ expiresAt: 1 });
  await db.collection('leases').createIndex({ expiresAt: 1 });
  await db.collection(collectionName('Session')).createIndex({ uid: 1 });
  await db.collection(collectionName('DeviceCode')).createIndex({ userCode: 1 });
}
