/**
 * Compile-time check (run by `tsc` in the test command, not by vitest): the
 * client's types of the JSON answers are the server's. `@hearsay/client`
 * has no dependencies, so it declares the wire shapes itself; these
 * assignments fail to compile the day either side changes a shape without
 * the other. The server's side is `@hearsay/service` (what the app turns
 * into JSON as it is).
 */
import type * as Client from '@hearsay/client';
import type * as Service from '@hearsay/service';

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const same = <A, B>(verdict: Same<A, B>): Same<A, B> => verdict;

export const wireTypesAgree = [
  same<Client.Consistency, Service.Consistency>(true),
  same<Client.MemberState, Service.MemberState>(true),
  same<Client.ClusterMember, Service.ClusterMember>(true),
  same<Client.ClusterView, Service.ClusterView>(true),
  same<Client.RepairProgress, Service.RepairProgress>(true),
  same<Client.RepairSummary, Service.RepairSummary>(true),
  same<Client.RepairLine, Service.RepairLine>(true),
] as const;
