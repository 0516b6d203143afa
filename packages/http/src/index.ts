// @hearsay/http: the Hono app of a node (public API v1, /metrics, the OpenAPI
// document) over any KvService of @hearsay/service.

export type { AppOptions, HealthCheck, HearsayApp, HearsayAppControls, HttpLimits, HttpLogger, SecurityReport } from './app.ts';
export { createApp, DEFAULT_LIMITS } from './app.ts';
export type { HttpErrorCode } from './errors.ts';
export { HTTP_ERROR_STATUS, RETRY_AFTER_S } from './errors.ts';
export { MAX_DISCARD_BYTES } from './body.ts';
export type { EvictionReason, LimitName, LoadLimitsOptions } from './load-limits.ts';
export { DEFAULT_SHEDDING_WINDOW_MS, EVICTION_REASONS, LIMIT_NAMES, LoadLimits } from './load-limits.ts';
export type { ServerLimiter, ServerLimits } from './server-limits.ts';
export { DEFAULT_SERVER_LIMITS, KEEP_ALIVE_GRACE_MS, limitServer, TIMEOUT_CHECK_INTERVAL_MS, validateServerLimits } from './server-limits.ts';
export { openApiDocument } from './openapi.ts';
export type { GuardOptions } from './server-guards.ts';
export { guardServer, rawErrorResponse, requestErrorResponse } from './server-guards.ts';
export type { Access, TokenVerifier } from './access.ts';
export type { NewToken, Principal, Scope, TokenEntry } from './tokens.ts';
export { AUTH_FILE_LIMITS, AuthFileError, createToken, formatAuthLine, hashToken, isValidTokenId, parseAuthFile, parseToken, SCOPES, TOKEN_VERSION, TokenTable } from './tokens.ts';
