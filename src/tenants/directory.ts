/** Finding and registering tenants. */
import type { AuditTrail, RequestContext } from '../audit/trail.ts';
import { conflict } from '../errors.ts';
import { nameKey } from '../accounts/normalize.ts';
import { newTenantSchema, parentKinds, parseInput, type NewTenantInput } from '../validation.ts';
import { ValidationError } from '../errors.ts';
import type { Tenant, TenantModel } from './model.ts';

export interface TenantSuggestion {
  id: string;
  name: string;
}

const SUGGESTION_CACHE_MS = 60_000;

export class TenantDirectory {
  readonly #tenants: TenantModel;
  readonly #audit: AuditTrail;
  #suggestions: { at: number; list: Promise<TenantSuggestion[]> } | undefined;

  constructor(tenants: TenantModel, audit: AuditTrail) {
    this.#tenants = tenants;
    this.#audit = audit;
  }

  /**
   * Finds the tenant a person typed into the sign-in form: its key (`05111000`), its name
   * (`Landeshauptstadt Düsseldorf`, any case) or a suggestion (`05111000 – Landeshauptstadt
   * Düsseldorf`). A suggestion counts only when key and name belong together, so a tenant
   * whose name merely starts with another tenant's key is found by that name.
   */
  async resolve(input: string): Promise<Tenant | undefined> {
    const typed = input.normalize('NFC').trim();
    if (typed.length === 0 || typed.length > 300) return undefined;

    const byId = await this.#tenants.findById(typed.toLowerCase()).lean();
    if (byId) return byId;
    const suggestion = /^(\S+)\s+[–—-]\s+(\S.*)$/.exec(typed);
    if (suggestion) {
      const [, key, name] = suggestion as unknown as [string, string, string];
      const suggested = await this.#tenants
        .findOne({ _id: key.toLowerCase(), nameKey: nameKey(name) })
        .lean();
      if (suggested) return suggested;
    }
    return (await this.#tenants.findOne({ nameKey: nameKey(typed) }).lean()) ?? undefined;
  }

  find(id: string): Promise<Tenant | null> {
    return this.#tenants.findById(id).lean();
  }

  /** Active tenants by name, for the suggestions of the sign-in form. */
  suggestions(): Promise<TenantSuggestion[]> {
    const now = Date.now();
    if (!this.#suggestions || now - this.#suggestions.at > SUGGESTION_CACHE_MS) {
      const list = this.#tenants
        .find({ active: true }, { name: 1 })
        .sort({ nameKey: 1 })
        .lean()
        .then((tenants) => tenants.map((t) => ({ id: t._id, name: t.name })));
      list.catch(() => (this.#suggestions = undefined));
      this.#suggestions = { at: now, list };
    }
    return this.#suggestions.list;
  }

  /**
   * Registers a tenant. Re-adding an identical tenant is a no-op (`created: false`), so
   * imports can be repeated; a different tenant under an existing key is a conflict.
   */
  async add(
    input: unknown,
    context: RequestContext,
  ): Promise<{ tenant: Tenant; created: boolean }> {
    const tenant = parseInput(newTenantSchema, input);
    await this.#checkParent(tenant);
    await this.#checkNameAgainstKeys(tenant);

    const existing = await this.#tenants.findById(tenant.id).lean();
    if (existing) {
      if (
        existing.name === tenant.name &&
        existing.kind === tenant.kind &&
        existing.parent === tenant.parent
      ) {
        return { tenant: existing, created: false };
      }
      throw conflict('tenant.exists', `tenant ${tenant.id} exists with other data`);
    }

    const doc = {
      _id: tenant.id,
      name: tenant.name,
      nameKey: nameKey(tenant.name),
      kind: tenant.kind,
      parent: tenant.parent,
      active: true,
    };
    try {
      await this.#tenants.create(doc);
    } catch (error) {
      if ((error as { code?: number }).code === 11000) {
        const sameName = await this.#tenants.exists({
          nameKey: doc.nameKey,
          _id: { $ne: tenant.id },
        });
        throw conflict(
          sameName ? 'tenant_name.taken' : 'tenant.exists',
          `tenant ${tenant.id} collides`,
        );
      }
      throw error;
    }
    this.#suggestions = undefined;
    await this.#audit.record(context, {
      tenantId: tenant.id,
      action: 'tenant.created',
      outcome: 'success',
      target: { tenantId: tenant.id },
    });
    const created = await this.#tenants.findById(tenant.id).lean();
    return { tenant: created!, created: true };
  }

  /** The parent exists, is of a kind this kind reports to, and its official key is a prefix. */
  async #checkParent(tenant: NewTenantInput): Promise<void> {
    if (tenant.parent === null) return;
    const parent = await this.#tenants.findById(tenant.parent).lean();
    if (!parent) throw new ValidationError({ parent: ['tenant_parent.unknown'] });
    if (!parentKinds[tenant.kind].includes(parent.kind)) {
      throw new ValidationError({ parent: ['tenant_parent.wrong_kind'] });
    }
    // Official keys nest: 051 (Bezirksregierung) ⊃ 05158 (Kreis) ⊃ 05158004 (Gemeinde).
    if (/^\d+$/.test(parent._id) && !tenant.id.startsWith(parent._id)) {
      throw new ValidationError({ parent: ['tenant_parent.key_mismatch'] });
    }
  }

  /**
   * The sign-in form accepts a key or a name: neither may be another tenant's other one,
   * or the tenant a person means could not be told apart.
   */
  async #checkNameAgainstKeys(tenant: NewTenantInput): Promise<void> {
    const key = nameKey(tenant.name);
    if (key !== tenant.id && (await this.#tenants.exists({ _id: key }))) {
      throw new ValidationError({ name: ['tenant_name.is_other_key'] });
    }
    if (await this.#tenants.exists({ nameKey: tenant.id, _id: { $ne: tenant.id } })) {
      throw new ValidationError({ id: ['tenant.is_other_name'] });
    }
  }
}
