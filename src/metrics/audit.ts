/**
 * The audit trail, counted: every recorded event also updates the metrics. The audit trail
 * is the one place where sign-in outcomes, locks and password changes are decided and
 * named, so the metrics count exactly what the audit trail shows.
 */
import { AuditTrail, type AuditEventInput, type RequestContext } from '../audit/trail.ts';
import type { Metrics } from './metrics.ts';

export class MeteredAuditTrail extends AuditTrail {
  readonly #metrics: Metrics;

  constructor(metrics: Metrics, ...args: ConstructorParameters<typeof AuditTrail>) {
    super(...args);
    this.#metrics = metrics;
  }

  /** Counted only once stored: a failed write is no event. */
  override async record(context: RequestContext, event: AuditEventInput): Promise<void> {
    await super.record(context, event);
    this.#metrics.observeAuditEvent(event);
  }
}
