/** The authorities (tenants): municipalities, Kreise, Bezirksregierungen, the ministry. */
import { Schema, type Connection, type Model } from 'mongoose';

export const tenantKinds = [
  'gemeinde',
  'kreis',
  'bezirksregierung',
  'ministerium',
  'betrieb',
] as const;
export type TenantKind = (typeof tenantKinds)[number];

export interface Tenant {
  /** The official key: AGS for a Gemeinde, Kreis key, Regierungsbezirk key, or a fixed id. */
  _id: string;
  name: string;
  nameKey: string;
  kind: TenantKind;
  parent: string | null;
  active: boolean;
  createdAt: Date;
  updatedAt: Date;
}

const tenantSchema = new Schema<Tenant>(
  {
    _id: { type: String, required: true },
    name: { type: String, required: true },
    nameKey: { type: String, required: true, unique: true },
    kind: { type: String, required: true, enum: tenantKinds },
    parent: { type: String, default: null },
    active: { type: Boolean, default: true },
  },
  { collection: 'tenants', timestamps: true, versionKey: false },
);

export type TenantModel = Model<Tenant>;

export const tenantModel = (connection: Connection): TenantModel =>
  (connection.models.Tenant as TenantModel | undefined) ??
  connection.model<Tenant>('Tenant', tenantSchema);
