// @hearsay/service: what a node's HTTP API calls. The http package serves it,
// the cluster coordinator and the single-store service implement it.

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
  AdminRequest,
  BodyBudget,
  ServiceErrorCode,
  ServiceErrorDetails,
} from './service.ts';
export { CONSISTENCY_LEVELS, SERVICE_ERROR_STATUS, ServiceError, handedOverPutOptions, insufficientReplicas, isServiceError, nothingToRepair } from './service.ts';
export type { LocalServiceOptions } from './local-service.ts';
export { createLocalService } from './local-service.ts';
