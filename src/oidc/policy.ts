/**
 * The interaction policy: the library's `login` and `consent` prompts, plus checks of ours
 * (oidc-provider docs, "interactions.policy").
 */
import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';

import { ProviderAccount } from './account-claims.ts';

const { base, Prompt, Check } = interactionPolicy;

/**
 * The session names an account that `findAccount` no longer returns (deactivated, retired,
 * deleted). Without this check the consent checks would run without an account and the
 * authorization endpoint would answer 500; with it the person gets the sign-in form.
 */
const accountUnavailable = new Check(
  'account_unavailable',
  'the account of the session can no longer sign in',
  // OIDC Core 1.0 §3.1.2.6: with prompt=none the client learns that a sign-in is needed.
  'login_required',
  (ctx: KoaContextWithOIDC) =>
    ctx.oidc.session?.accountId !== undefined && ctx.oidc.account === undefined
      ? Check.REQUEST_PROMPT
      : Check.NO_NEED_TO_PROMPT,
);

/**
 * The session's sign-in lies further back than its absolute limit (ASVS 5.0 7.3.2). Its
 * stored record expires then as well (provider.ts, `sessionLifetime`); this check holds
 * the limit also for a record that outlived it.
 */
const sessionTooOld = (sessionSeconds: number) =>
  new Check(
    'session_too_old',
    'the sign-in of the session is older than the session lifetime',
    'login_required',
    (ctx: KoaContextWithOIDC) =>
      ctx.oidc.session?.accountId !== undefined && ctx.oidc.session.past(sessionSeconds)
        ? Check.REQUEST_PROMPT
        : Check.NO_NEED_TO_PROMPT,
  );

/**
 * The password is initial or expired: it must be changed before any token is issued, also
 * when a session already exists (design 3.2). Not requestable by clients; with
 * `prompt=none` the client receives `interaction_required`.
 */
const passwordChange = new Prompt(
  { name: 'password_change', requestable: false },
  new Check(
    'password_change_required',
    'the password must be changed',
    (ctx: KoaContextWithOIDC) =>
      ctx.oidc.account instanceof ProviderAccount && ctx.oidc.account.passwordChangeRequired
        ? Check.REQUEST_PROMPT
        : Check.NO_NEED_TO_PROMPT,
  ),
);

export function interactionPrompts(options: { sessionSeconds: number }) {
  const policy = base();
  policy.get('login')!.checks.add(accountUnavailable, 1);
  policy.get('login')!.checks.add(sessionTooOld(options.sessionSeconds), 2);
  policy.add(passwordChange, 1);
  return policy;
}
