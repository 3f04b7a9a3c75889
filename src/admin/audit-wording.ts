/**
 * The audit trail's codes in the page language, for its page and its CSV export.
 */
import { hasText, type Translate } from '../http/views.ts';

/**
 * The audit trail's reasons and details in the page language: known keys and values
 * (permissions, roles, states) get their texts, anything else is shown as stored.
 */
export function auditWording(t: Translate) {
  const known = (key: string) => (hasText(key) ? t(key) : undefined);
  const value = (raw: unknown): string => {
    if (Array.isArray(raw)) return raw.length ? raw.map(value).join(', ') : '–';
    const text = String(raw);
    if (typeof raw === 'boolean') return known(`value.${text}`) ?? text;
    return known(`permission.${text}`) ?? known(`role.${text}`) ?? known(`state.${text}`) ?? text;
  };
  return {
    action: (action: string) => known(`audit.action_${action}`) ?? action,
    outcome: (outcome: string) => known(`audit.outcome_${outcome}`) ?? outcome,
    actor: (kind: string) => known(`audit.actor_${kind}`) ?? kind,
    reason: (reason: string) => known(`audit.reason_${reason}`) ?? reason,
    details: (details: Record<string, unknown> | null) =>
      Object.entries(details ?? {})
        .map(([key, raw]) => `${known(`audit.detail_${key}`) ?? key}: ${value(raw)}`)
        .join('; '),
  };
}
