/**
 * The reporting API's side: it verifies the JWT access tokens the identity provider issues
 * for it (RFC 9068) offline, against the provider's published keys, and authorises by the
 * `permissions` claim.
 */
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';

export interface AccessTokenClaims extends JWTPayload {
  sub: string;
  client_id: string;
  scope: string;
  tenant_id: string;
  permissions: string[];
}

export type Permission = 'meldeverfahren' | 'zahlungsmitteilungen';

export class AccessDenied extends Error {
  override name = 'AccessDenied';
  /** 401 for a missing or invalid token, 403 for a valid one without the permission. */
  readonly status: 401 | 403;
  readonly error: 'invalid_token' | 'insufficient_scope';

  constructor(status: 401 | 403, error: 'invalid_token' | 'insufficient_scope', message: string) {
    super(message);
    this.status = status;
    this.error = error;
  }
}

/**
 * Returns a verifier for bearer tokens of the API named `audience`. The key set is fetched
 * from `jwksUri` once and again when a token names an unknown `kid` (after a key rotation).
 */
export function accessTokenVerifier(options: { issuer: string; jwksUri: URL; audience: string }) {
  const keys = createRemoteJWKSet(options.jwksUri);

  return async function verify(
    authorization: string | undefined,
    needed: Permission,
  ): Promise<AccessTokenClaims> {
    const token = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(authorization ?? '')?.[1];
    if (!token) throw new AccessDenied(401, 'invalid_token', 'no bearer token');

    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        issuer: options.issuer,
        audience: options.audience,
        // RFC 9068 §4: only tokens typed as access tokens, so that an ID token (which is
        // also signed by the provider) is never accepted in their place.
        typ: 'at+jwt',
        // The provider signs access tokens for this API with ES256 only; a token of any
        // other algorithm did not come from it as configured.
        algorithms: ['ES256'],
        requiredClaims: ['sub', 'exp', 'iat', 'client_id', 'scope', 'tenant_id'],
        // Also refuses an `iat` in the future; no access token lives longer than an hour.
        maxTokenAge: '1h',
        clockTolerance: 15,
      }));
    } catch (error) {
      const reason = error instanceof errors.JOSEError ? error.code : 'malformed';
      throw new AccessDenied(401, 'invalid_token', `token refused: ${reason}`);
    }

    if (!hasClaimTypes(payload))
      throw new AccessDenied(401, 'invalid_token', 'token refused: claims of the wrong type');
    const claims = payload;
    // The scope names what the client asked for and was granted; permissions what the
    // account holds. Both must include the permission.
    const scopes = claims.scope.split(' ');
    if (!scopes.includes(needed) || !claims.permissions.includes(needed)) {
      throw new AccessDenied(403, 'insufficient_scope', `token lacks ${needed}`);
    }
    return claims;
  };
}

/** The claims the API relies on have the types it relies on (whole words, not substrings). */
function hasClaimTypes(payload: JWTPayload): payload is AccessTokenClaims {
  const strings = (value: unknown): value is string[] =>
    Array.isArray(value) && value.every((item) => typeof item === 'string');
  return (
    typeof payload.sub === 'string' &&
    typeof payload.client_id === 'string' &&
    typeof payload.scope === 'string' &&
    typeof payload.tenant_id === 'string' &&
    payload.tenant_id !== '' &&
    strings(payload.permissions) &&
    // No access token lives longer than an hour (ACCESS_TOKEN_TTL_SECONDS).
    payload.exp! - payload.iat! <= 3600
  );
}
