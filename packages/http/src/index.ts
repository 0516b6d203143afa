export type {
  Consistency,
  GetOptions,
  PutOptions,
  DeleteOptions,
  ListOptions,
  ListItem,
  ListPage,
  MemberState,
  ClusterMember,
  ClusterView,
  HealthReport,
  RepairProgress,
  RepairSummary,
  RepairLine,
  RepairOptions,
  KvService,
  ServiceErrorCode,
  ServiceErrorDetails,
} from './service.ts';
export { CONSISTENCY_LEVELS, SERVICE_ERROR_STATUS, ServiceError, handedOverPutOptions, insufficientReplicas } from './service.ts';
export type { AppOptions, HearsayApp, HearsayAppControls, HttpLimits, HttpLogger } from './app.ts';
export { createApp, DEFAULT_LIMITS } from './app.ts';
export type { LocalServiceOptions } from './local-service.ts';
export { createLocalService } from './local-service.ts';
export type { HttpErrorCode } from './errors.ts';
export { HTTP_ERROR_STATUS } from './errors.ts';
export { openApiDocument } from './openapi.ts';
export type { GuardOptions } from './server-guards.ts';
export { guardServer, rawErrorResponse, requestErrorResponse } from './server-guards.ts';
