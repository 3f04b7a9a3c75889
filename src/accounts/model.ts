/** Accounts: one person's sign-in identity within one tenant. */
import { Schema, type Connection, type Model } from 'mongoose';

export const permissions = ['meldeverfahren', 'zahlungsmitteilungen'] as const;
export type Permission = (typeof permissions)[number];

export const roles = ['local_admin', 'operator'] as const;
export type Role = (typeof roles)[number];

export const accountStates = ['active', 'deactivated', 'retired'] as const;
export type AccountState = (typeof accountStates)[number];

export interface ActorRef {
  accountId: string | null;
  tenantId: string | null;
  kind: 'account' | 'cli' | 'system';
}

export interface NameChange {
  givenName: string;
  familyName: string;
  changedAt: Date;
  changedBy: ActorRef;
}

/**
 * Consecutive failed sign-ins. `failures` holds fingerprints of the distinct wrong passwords
 * of the current run, so a retyped typo counts once; `lockedAt` is set by the failure that
 * reaches the limit.
 */
export interface Lockout {
  count: number;
  failures: string[];
  lockedAt: Date | null;
  lastFailureAt: Date | null;
}

export interface PasswordState {
  hash: string;
  changedAt: Date;
  /** An initial (admin-issued) password that must be replaced at the next sign-in. */
  mustChange: boolean;
  /** When an unused initial password stops working. */
  initialExpiresAt: Date | null;
  /** Hashes of the previous passwords, newest first. */
  history: string[];
}

export interface Account {
  /** The `sub`: opaque, random, never reused. */
  _id: string;
  tenantId: string;
  username: string;
  usernameKey: string;
  givenName: string;
  familyName: string;
  email: string | null;
  nameHistory: NameChange[];
  permissions: Permission[];
  roles: Role[];
  state: AccountState;
  password: PasswordState;
  lockout: Lockout;
  lastLoginAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

const actorSchema = new Schema<ActorRef>(
  { accountId: String, tenantId: String, kind: { type: String, required: true } },
  { _id: false },
);

const accountSchema = new Schema<Account>(
  {
    _id: { type: String, required: true },
    tenantId: { type: String, required: true },
    username: { type: String, required: true },
    usernameKey: { type: String, required: true },
    givenName: { type: String, required: true },
    familyName: { type: String, required: true },
    email: { type: String, default: null },
    nameHistory: [
      new Schema<NameChange>(
        { givenName: String, familyName: String, changedAt: Date, changedBy: actorSchema },
        { _id: false },
      ),
    ],
    permissions: { type: [String], enum: permissions, default: [] },
    roles: { type: [String], enum: roles, default: [] },
    state: { type: String, enum: accountStates, default: 'active' },
    password: {
      hash: { type: String, required: true },
      changedAt: { type: Date, required: true },
      mustChange: { type: Boolean, default: true },
      initialExpiresAt: { type: Date, default: null },
      history: { type: [String], default: [] },
    },
    lockout: {
      count: { type: Number, default: 0 },
      failures: { type: [String], default: [] },
      lockedAt: { type: Date, default: null },
      lastFailureAt: { type: Date, default: null },
    },
    lastLoginAt: { type: Date, default: null },
  },
  { collection: 'accounts', timestamps: true, versionKey: false },
);

accountSchema.index({ tenantId: 1, usernameKey: 1 }, { unique: true });

export type AccountModel = Model<Account>;

export const accountModel = (connection: Connection): AccountModel =>
  (connection.models.Account as AccountModel | undefined) ??
  connection.model<Account>('Account', accountSchema);
