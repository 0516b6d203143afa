/**
 * Who may use which route. Each route of the app names the access it needs;
 * a request's bearer token gives a `Principal` (tokens.ts). The check reads
 * only the `Authorization` header and, for key routes, the key or list prefix
 * from the URL: a request that fails it costs no body read, no service call
 * and no store lookup, so a refusal never depends on (nor says) whether a
 * key exists.
 *
 * | access    | routes                                          | scopes that pass |
 * | --------- | ----------------------------------------------- | ---------------- |
 * | `open`    | `/v1/health`, `/v1/openapi.json`, any OPTIONS   | no token needed  |
 * | `read`    | GET/HEAD `/v1/kv/{key}`, `/v1/kv`, `/v1/cluster` | read, admin      |
 * | `write`   | PUT/DELETE `/v1/kv/{key}`                        | write, admin     |
 * | `metrics` | `/metrics` (open with `openMetrics`)            | metrics, admin   |
 * | `admin`   | `/v1/repair` (and cluster operations)           | admin            |
 *
 * A token with prefixes passes the key routes only for keys (and list
 * prefixes) that start with one of them.
 */
import { errorResponse } from './errors.ts';
import type { Principal, Scope } from './tokens.ts';

export type Access = 'open' | 'read' | 'write' | 'metrics' | 'admin';

/** What verifies bearer tokens: a `TokenTable`, or the CLI's holder that swaps tables on reload. */
export interface TokenVerifier {
  verify(token: string): Principal | undefined;
}

/** The principal of every request when the app has no verifier: all scopes, every key. */
export const ANONYMOUS_ADMIN: Principal = { id: 'anonymous', scopes: new Set<Scope>(['read', 'write', 'admin', 'metrics']), prefixes: undefined };

const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;
const CHALLENGE = 'Bearer realm="hearsay"';

export type AuthRefusal = 'unauthenticated' | 'forbidden';

/**
 * Answers for refused requests. A refused request that carries a body gets
 * `Connection: close`: the server then drops the connection instead of
 * reading the body it did not want.
 */
function refusal(status: AuthRefusal, message: string, request: Request, challenge: string): Response {
  const headers: Record<string, string> = { 'www-authenticate': challenge };
  if (hasBody(request)) headers['connection'] = 'close';
  return errorResponse(status === 'unauthenticated' ? 'UNAUTHENTICATED' : 'FORBIDDEN', message, undefined, headers);
}

function hasBody(request: Request): boolean {
  const length = request.headers.get('content-length');
  return (length !== null && length !== '0') || request.headers.has('transfer-encoding');
}

export interface AccessControl {
  /** The request's principal when it may use a route of this access, else the 401/403 answer. */
  check(request: Request, access: Access): Principal | Response;
  /** Undefined when `principal` may use `key`, else the 403 answer. */
  checkKey(request: Request, principal: Principal, key: string, what: 'read' | 'write'): Response | undefined;
  /** Undefined when `principal` may list under `prefix`, else the 403 answer. */
  checkListPrefix(request: Request, principal: Principal, prefix: string): Response | undefined;
}

export function createAccessControl(verifier: TokenVerifier | undefined, options: { readonly openMetrics?: boolean; readonly onRefusal?: (why: AuthRefusal) => void } = {}): AccessControl {
  const onRefusal = options.onRefusal ?? (() => undefined);
  const refuse = (why: AuthRefusal, message: string, request: Request, challenge: string): Response => {
    onRefusal(why);
    return refusal(why, message, request, challenge);
  };
  const forbidden = (request: Request, principal: Principal, what: string): Response =>
    refuse('forbidden', `token ${principal.id} may not ${what}`, request, `${CHALLENGE}, error="insufficient_scope"`);

  return {
    check(request, access) {
      if (access === 'open' || verifier === undefined) return ANONYMOUS_ADMIN;
      if (access === 'metrics' && options.openMetrics === true) return ANONYMOUS_ADMIN;
      const header = request.headers.get('authorization');
      if (header === null) return refuse('unauthenticated', 'this route needs a token: Authorization: Bearer <token>', request, CHALLENGE);
      const match = BEARER.exec(header);
      const principal = match === null ? undefined : verifier.verify(match[1]!);
      if (principal === undefined) {
        return refuse('unauthenticated', 'the bearer token is not valid (malformed, unknown or revoked)', request, `${CHALLENGE}, error="invalid_token"`);
      }
      const scopes = principal.scopes;
      if (scopes.has('admin') || scopes.has(access as Scope)) return principal;
      return forbidden(request, principal, access === 'admin' ? 'use this route (it needs the admin scope)' : `use this route (it needs the ${access} or admin scope)`);
    },
    checkKey(request, principal, key, what) {
      const prefixes = principal.prefixes;
      if (prefixes === undefined) return undefined;
      for (const prefix of prefixes) if (key.startsWith(prefix)) return undefined;
      return forbidden(request, principal, `${what} keys outside its prefixes`);
    },
    checkListPrefix(request, principal, prefix) {
      const prefixes = principal.prefixes;
      if (prefixes === undefined) return undefined;
      for (const allowed of prefixes) if (prefix.startsWith(allowed)) return undefined;
      return forbidden(request, principal, 'list keys outside its prefixes (pass ?prefix= within them)');
    },
  };
}
