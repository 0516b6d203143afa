// Unit tests of the core, driven by hand on virtual time: every input carries
// nowMs, every output is polled. No sockets, no timers, no sleeping.

import { createRandom } from '@hearsay/sim';
import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import type { GossipTuning } from './config.ts';
import { GossipError } from './errors.ts';
import { MessageType } from './messages.ts';
import type { Ack, Alive, MemberRecord, PacketMessage, Ping, PingReq, StateUpdate, Suspect, SynAck, SynAck2 } from './messages.ts';
import { GossipNode } from './node.ts';
import { MESSAGE_OVERHEAD_BYTES } from './size.ts';
import type { GossipEvent, Transmit } from './node.ts';

const addr = (id: string): string => `${id}:7946`;
const record = (id: string, over: Partial<MemberRecord> = {}): MemberRecord => ({
  id,
  address: addr(id),
  generation: 1,
  incarnation: 0,
  status: 'alive',
  heartbeat: 0,
  version: 0,
  entries: [],
  ...over,
});

function makeNode(id: string, peers: string[], tuning: Partial<GossipTuning> = {}, seeds: string[] = []): { node: GossipNode; events: GossipEvent[] } {
  const node = new GossipNode({ id, address: addr(id), generation: 1, random: createRandom(42).next, seeds, ...tuning });
  node.loadView(peers.map((p) => record(p)), 0);
  const events: GossipEvent[] = [];
  node.onEvent((e) => events.push(e));
  return { node, events };
}

const msgsTo = (ts: Transmit[], to: string): PacketMessage[] => ts.filter((t) => t.to === to).flatMap((t) => t.msgs);
const ofType = <T extends PacketMessage['type']>(ms: PacketMessage[], type: T): Extract<PacketMessage, { type: T }>[] =>
  ms.filter((m): m is Extract<PacketMessage, { type: T }> => m.type === type);

/** Run the node's timers up to `untilMs`, collecting every packet. */
function runTimers(node: GossipNode, untilMs: number): Transmit[] {
  const out: Transmit[] = [];
  for (let guard = 0; guard < 100_000; guard++) {
    const d = node.nextDeadline();
    if (d === undefined || d > untilMs) break;
    node.tick(d);
    out.push(...node.pollTransmit());
    node.pollStream();
  }
  return out;
}

describe('GossipNode: ping and ack', () => {
  it('answers a ping for itself with an ack to the source address, same seqNo', () => {
    const { node } = makeNode('a', ['b']);
    node.start(0);
    node.pollTransmit();
    node.handlePacket(addr('b'), [{ type: MessageType.Ping, seqNo: 7, target: 'a', source: 'b', sourceAddr: addr('b') }], 10);
    const acks = ofType(msgsTo(node.pollTransmit(), addr('b')), MessageType.Ack);
    expect(acks).toEqual([{ type: MessageType.Ack, seqNo: 7, source: 'a' }]);
  });

  it('drops a ping meant for another id (a new process at an old address)', () => {
    const { node } = makeNode('a', ['b']);
    node.start(0);
    node.pollTransmit();
    node.handlePacket(addr('b'), [{ type: MessageType.Ping, seqNo: 7, target: 'z', source: 'b', sourceAddr: addr('b') }], 10);
    expect(node.pollTransmit()).toEqual([]);
    expect(node.stats.dropped).toBe(1);
  });

  it('relays a PingReq and forwards the ack, or nacks on timeout', () => {
    const { node } = makeNode('r', ['a', 'c']);
    node.start(0);
    node.pollTransmit();
    const req: PingReq = { type: MessageType.PingReq, seqNo: 3, target: 'c', targetAddr: addr('c'), source: 'a', sourceAddr: addr('a'), nack: true };
    node.handlePacket(addr('a'), [req], 100);
    const [ping] = ofType(msgsTo(node.pollTransmit(), addr('c')), MessageType.Ping) as Ping[];
    expect(ping).toMatchObject({ target: 'c', source: 'r' });
    node.handlePacket(addr('c'), [{ type: MessageType.Ack, seqNo: ping!.seqNo, source: 'c' }], 150);
    expect(ofType(msgsTo(node.pollTransmit(), addr('a')), MessageType.Ack)).toEqual([{ type: MessageType.Ack, seqNo: 3, source: 'c' }]);

    node.handlePacket(addr('a'), [{ ...req, seqNo: 4 }], 200);
    node.pollTransmit();
    node.tick(200 + node.tuning.probeTimeoutMs);
    expect(ofType(msgsTo(node.pollTransmit(), addr('a')), MessageType.Nack)).toEqual([{ type: MessageType.Nack, seqNo: 4, source: 'r' }]);
  });
});

describe('GossipNode: SWIM probe with Lifeguard', () => {
  it('probes, goes indirect after the timeout, suspects at the end of the interval and tells the suspect', () => {
    const { node, events } = makeNode('a', ['b', 'c', 'd', 'e']);
    node.start(0);
    node.pollTransmit();
    // Find the first probe.
    let sent: Transmit[] = [];
    let probeAt = 0;
    while (sent.every((t) => ofType(t.msgs, MessageType.Ping).length === 0)) {
      probeAt = node.nextDeadline()!;
      node.tick(probeAt);
      sent = node.pollTransmit();
    }
    const pingT = sent.find((t) => ofType(t.msgs, MessageType.Ping).length > 0)!;
    const target = ofType(pingT.msgs, MessageType.Ping)[0]!.target;
    // No ack: after probeTimeoutMs, indirect probes through k = 3 others.
    node.tick(probeAt + 500);
    const reqs = node.pollTransmit().flatMap((t) => ofType(t.msgs, MessageType.PingReq));
    expect(reqs).toHaveLength(3);
    expect(new Set(reqs.map((r) => r.target))).toEqual(new Set([target]));
    // Two of three relays nack: one missing nack raises our awareness by one.
    node.handlePacket(addr('x'), [{ type: MessageType.Nack, seqNo: reqs[0]!.seqNo, source: 'x' }], probeAt + 700);
    node.handlePacket(addr('y'), [{ type: MessageType.Nack, seqNo: reqs[0]!.seqNo, source: 'y' }], probeAt + 700);
    node.tick(probeAt + 1000);
    expect(node.awareness.score).toBe(1);
    expect(node.statusOf(target)).toBe('suspect');
    expect(events.filter((e) => e.type === 'suspect').map((e) => e.member.id)).toEqual([target]);
    const direct = ofType(msgsTo(node.pollTransmit(), addr(target)), MessageType.Suspect);
    expect(direct[0]).toMatchObject({ id: target, from: 'a', incarnation: 0 });
  });

  it('a direct ack ends the probe and lowers awareness; the suspicion times out into dead', () => {
    const { node, events } = makeNode('a', ['b', 'c', 'd']);
    node.start(0);
    node.awareness.applyDelta(2);
    node.pollTransmit();
    let acked = false;
    for (let guard = 0; guard < 50 && !acked; guard++) {
      const d = node.nextDeadline()!;
      node.tick(d);
      for (const t of node.pollTransmit()) {
        for (const p of ofType(t.msgs, MessageType.Ping)) {
          node.handlePacket(t.to, [{ type: MessageType.Ack, seqNo: p.seqNo, source: p.target }], d + 5);
          acked = true;
        }
      }
    }
    expect(node.awareness.score).toBe(1);

    // Suspect b from outside; nobody refutes; the suspicion expires into dead.
    node.handlePacket(addr('c'), [{ type: MessageType.Suspect, id: 'b', generation: 1, incarnation: 0, from: 'c' }], 10_000);
    expect(node.statusOf('b')).toBe('suspect');
    runTimers(node, 200_000);
    expect(node.statusOf('b')).toBe('dead');
    expect(events.filter((e) => e.member.id === 'b').map((e) => e.type)).toEqual(['suspect', 'dead']);
  });

  it('a suspect is cleared by an Alive with a higher incarnation only', () => {
    const { node, events } = makeNode('a', ['b']);
    node.start(0);
    node.handlePacket(addr('c'), [{ type: MessageType.Suspect, id: 'b', generation: 1, incarnation: 0, from: 'c' }], 10);
    const stale: Alive = { type: MessageType.Alive, id: 'b', address: addr('b'), generation: 1, incarnation: 0 };
    node.handlePacket(addr('b'), [stale], 20);
    expect(node.statusOf('b')).toBe('suspect');
    node.handlePacket(addr('b'), [{ ...stale, incarnation: 1 }], 30);
    expect(node.statusOf('b')).toBe('alive');
    expect(events.map((e) => e.type)).toEqual(['suspect', 'alive']);
  });

  it('refutes a suspicion of itself with a higher incarnation, and answers the accuser directly', () => {
    const { node } = makeNode('a', ['b', 'c']);
    node.start(0);
    node.pollTransmit();
    node.handlePacket(addr('c'), [{ type: MessageType.Suspect, id: 'a', generation: 1, incarnation: 0, from: 'c' }], 10);
    expect(node.incarnation).toBe(1);
    expect(node.awareness.score).toBe(1);
    const toAccuser = ofType(msgsTo(node.pollTransmit(), addr('c')), MessageType.Alive);
    expect(toAccuser[0]).toMatchObject({ id: 'a', incarnation: 1 });
    // A stale accusation (old incarnation) does not bump again, but still gets a direct answer later.
    node.handlePacket(addr('b'), [{ type: MessageType.Suspect, id: 'a', generation: 1, incarnation: 0, from: 'b' }], 20);
    expect(node.incarnation).toBe(1);
    expect(ofType(msgsTo(node.pollTransmit(), addr('b')), MessageType.Alive)[0]).toMatchObject({ incarnation: 1 });
  });

  it('a probe of a member\'s old life that fails after the member restarted does not suspect the new life', () => {
    // The interleaving of issue 15: b crashed and is suspect; our probe of b starts (ping + the reminder Suspect);
    // b restarts (generation 2) and its Alive reaches us while the probe is still open; the probe's interval ends
    // without an ack (the ping went to the old process). The failure is evidence about generation 1 only.
    const { node, events } = makeNode('a', ['b']);
    node.start(0);
    node.handlePacket(addr('c'), [{ type: MessageType.Suspect, id: 'b', generation: 1, incarnation: 0, from: 'c' }], 10);
    expect(node.statusOf('b')).toBe('suspect');
    node.pollTransmit();
    let probeAt = -1;
    for (let guard = 0; guard < 100 && probeAt < 0; guard++) {
      const d = node.nextDeadline()!;
      node.tick(d);
      if (node.pollTransmit().some((t) => t.to === addr('b') && ofType(t.msgs, MessageType.Ping).length > 0)) probeAt = d;
    }
    expect(probeAt).toBeGreaterThanOrEqual(0);
    node.handlePacket(addr('b'), [{ type: MessageType.Alive, id: 'b', address: addr('b'), generation: 2, incarnation: 0 }], probeAt + 100);
    expect(node.statusOf('b')).toBe('alive');
    runTimers(node, probeAt + node.tuning.probeIntervalMs);
    expect(node.statusOf('b')).toBe('alive');
    expect(node.incarnationOf('b')).toEqual({ generation: 2, incarnation: 0 });
    expect(events.filter((e) => e.member.id === 'b').map((e) => `${e.type}@${e.member.generation}`)).toEqual(['suspect@1', 'alive@2']);
  });

  it('a probe that fails after the target refuted (higher incarnation) does not suspect the refuted life', () => {
    const { node, events } = makeNode('a', ['b']);
    node.start(0);
    node.pollTransmit();
    let probeAt = -1;
    for (let guard = 0; guard < 100 && probeAt < 0; guard++) {
      const d = node.nextDeadline()!;
      node.tick(d);
      if (node.pollTransmit().some((t) => t.to === addr('b') && ofType(t.msgs, MessageType.Ping).length > 0)) probeAt = d;
    }
    node.handlePacket(addr('b'), [{ type: MessageType.Alive, id: 'b', address: addr('b'), generation: 1, incarnation: 3 }], probeAt + 100);
    runTimers(node, probeAt + node.tuning.probeIntervalMs);
    expect(node.statusOf('b')).toBe('alive');
    expect(events.filter((e) => e.type === 'suspect')).toEqual([]);
  });

  it('a suspicion of a later incarnation voids the one held: its timer starts over, it is not a confirmation', () => {
    // Seen at 20% loss in a simulated hour: a node held a suspicion of b at incarnation 49, missed b's refutations
    // (50, then 51) and took the rumors "suspect b at 50" as confirmations of 49; it declared b dead on 49's clock.
    const peers = Array.from({ length: 20 }, (_, i) => `p${i}`);
    // n = 22: min = 4·log10(22)·1 s ≈ 5.4 s, max = 6·min ≈ 32 s, k = 2.
    const { node, events } = makeNode('a', ['b', ...peers], { suspicionMult: 4, suspicionMaxTimeoutMult: 6 });
    node.start(0);
    const suspect = (incarnation: number, from: string): Suspect => ({ type: MessageType.Suspect, id: 'b', generation: 1, incarnation, from });
    node.handlePacket(addr('p1'), [suspect(0, 'p1')], 0);
    runTimers(node, 20_000);
    expect(node.statusOf('b')).toBe('suspect');
    node.handlePacket(addr('p2'), [suspect(1, 'p2'), suspect(1, 'p3'), suspect(1, 'p4')], 20_000);
    expect(node.incarnationOf('b')).toEqual({ generation: 1, incarnation: 1 });
    // Taken as two confirmations of incarnation 0, the deadline would fall to 0 + 5.4 s: dead at once. The new
    // suspicion started at 20 s with one accuser and two confirmations: dead at 20 + 5.4 s, not before.
    runTimers(node, 25_000);
    expect(node.statusOf('b')).toBe('suspect');
    runTimers(node, 200_000);
    expect(node.statusOf('b')).toBe('dead');
    expect(node.incarnationOf('b')).toEqual({ generation: 1, incarnation: 1 });
    expect(events.filter((e) => e.member.id === 'b').map((e) => `${e.type}@${e.member.incarnation}`)).toEqual(['suspect@0', 'suspect@1', 'dead@1']);
  });

  it('suspicion shrinks with independent confirmations (Lifeguard)', () => {
    const peers = Array.from({ length: 20 }, (_, i) => `p${i}`);
    const solo = makeNode('a', peers).node;
    const confirmed = makeNode('a', peers).node;
    for (const n of [solo, confirmed]) n.start(0);
    const s = (from: string): Suspect => ({ type: MessageType.Suspect, id: 'p0', generation: 1, incarnation: 0, from });
    solo.handlePacket(addr('p1'), [s('p1')], 0);
    confirmed.handlePacket(addr('p1'), [s('p1'), s('p2'), s('p3')], 0);
    const deadAt = (n: GossipNode): number => {
      for (let t = 0; t < 1_000_000; t += 100) {
        n.tick(t);
        if (n.statusOf('p0') === 'dead') return t;
      }
      return Infinity;
    };
    // n = 21: min = max(floor 4, 2·log10(21) ≈ 2.6) · 1 s = 4 s, max = 6·min = 24 s; k = 2 confirmations.
    expect(deadAt(confirmed)).toBeLessThanOrEqual(4000);
    expect(deadAt(solo)).toBeGreaterThanOrEqual(24_000);
  });

  it.each([
    // n, suspicionMult, floor (probe intervals), k → lower timeout, confirmations expected
    [100, 2, 4, 2, 4000, 2],
    [1000, 2, 4, 2, 6000, 2],
    [5, 2, 4, 2, 4000, 2],
    [3, 2, 4, 2, 4000, 0], // too few members to confirm: the lower timeout alone
    [100, 4, 0, 2, 8000, 2], // memberlist's defaults
    [100, 1, 0, 3, 2000, 3],
  ])('n = %i, suspicionMult %d, floor %d intervals, k %i: lower timeout %i ms, %i confirmations', (n, suspicionMult, suspicionFloorMult, suspicionConfirmations, minMs, k) => {
    const peers = Array.from({ length: n - 1 }, (_, i) => `p${i}`);
    const { node } = makeNode('a', peers, { suspicionMult, suspicionFloorMult, suspicionConfirmations });
    node.start(0);
    const confirmations = Array.from({ length: k }, (_, i) => ({ type: MessageType.Suspect, id: 'p0', generation: 1, incarnation: 0, from: `p${i + 2}` }) satisfies Suspect);
    node.handlePacket(addr('p1'), [{ type: MessageType.Suspect, id: 'p0', generation: 1, incarnation: 0, from: 'p1' }, ...confirmations], 0);
    runTimers(node, minMs - 1);
    expect(node.statusOf('p0')).toBe('suspect');
    runTimers(node, minMs);
    expect(node.statusOf('p0')).toBe('dead');
  });
});

describe('GossipNode: membership', () => {
  it('joins through a seed with Syn/SynAck/SynAck2, retrying with backoff until answered', () => {
    const { node, events } = makeNode('new', [], {}, [addr('seed')]);
    node.start(0);
    const [req] = node.pollStream();
    expect(req).toMatchObject({ to: addr('seed'), msg: { type: MessageType.Syn, join: true, source: 'new' } });
    expect(node.isJoined).toBe(false);
    // No answer: retry after streamTimeout + 1 s, then + 2 s, ...
    const retries: number[] = [];
    for (let guard = 0; guard < 10_000 && retries.length < 3; guard++) {
      const d = node.nextDeadline()!;
      node.tick(d);
      if (node.pollStream().some((r) => r.msg.join)) retries.push(d);
      node.pollTransmit();
    }
    // Attempt 0 at t=0 waits streamTimeout (5 s) + 1 s; then + 2 s, + 4 s.
    expect(retries).toEqual([6000, 6000 + 7000, 13_000 + 9000]);
    // The seed answers: the node learns the cluster and sends what the seed asked for.
    const seed = makeNode('seed', ['b']).node;
    seed.start(0);
    const synAck = seed.handleStream(addr('new'), req!.msg, 100) as SynAck;
    expect(synAck.type).toBe(MessageType.SynAck);
    expect(synAck.requests.map((d) => d.id)).toEqual(['new']);
    const ack2 = node.handleStream(addr('seed'), synAck, 110) as SynAck2;
    expect(node.isJoined).toBe(true);
    expect(events.filter((e) => e.type === 'join').map((e) => e.member.id).sort()).toEqual(['b', 'seed']);
    expect(ack2.records.map((r) => r.id)).toEqual(['new']);
    expect(seed.handleStream(addr('new'), ack2, 120)).toBeUndefined();
    expect(seed.statusOf('new')).toBe('alive');
  });

  it('retries a join after the backoff alone once every seed of the attempt refused (handleStreamError)', () => {
    const { node } = makeNode('new', [], {}, [addr('s1'), addr('s2')]);
    node.start(0);
    const first = node.pollStream().map((r) => r.to).sort();
    expect(first).toEqual([addr('s1'), addr('s2')]);
    const joinsUntil = (untilMs: number, failAfterMs?: number): number[] => {
      const at: number[] = [];
      for (let guard = 0; guard < 1000; guard++) {
        const d = node.nextDeadline()!;
        if (d > untilMs) break;
        node.tick(d);
        node.pollTransmit();
        const opened = node.pollStream().filter((r) => r.msg.join);
        if (opened.length > 0) at.push(d);
        if (failAfterMs !== undefined) for (const r of opened) node.handleStreamError(r.to, d + failAfterMs);
      }
      return at;
    };
    node.handleStreamError(addr('s1'), 10);
    expect(joinsUntil(3000)).toEqual([]); // s2 may still answer: no retry before the attempt's timeout
    node.handleStreamError(addr('s2'), 3000);
    expect(node.stats.streamsFailed).toBe(2);
    // Every seed refused: retry 1 s (the first backoff) after the last refusal, not at 6 s; that attempt fails
    // at once too, and the next comes 2 s later.
    expect(joinsUntil(6500, 1)).toEqual([4000, 6001]);
    // A failure of some other stream (a push-pull) after joining changes nothing about joins.
    const joined = makeNode('x', ['b']).node;
    joined.start(0);
    joined.handleStreamError(addr('b'), 5);
    expect(joined.isJoined).toBe(true);
  });

  it('runs one more push-pull with the member that let it in, joinPushPullDelayMs after joining', () => {
    const { node } = makeNode('new', [], { joinPushPullDelayMs: 500 }, [addr('seed')]);
    node.start(0);
    const [req] = node.pollStream();
    const seed = makeNode('seed', ['b']).node;
    seed.start(0);
    node.handleStream(addr('seed'), seed.handleStream(addr('new'), req!.msg, 100)!, 110);
    const opened: { at: number; to: string; join: boolean }[] = [];
    for (let guard = 0; guard < 1000; guard++) {
      const d = node.nextDeadline()!;
      if (d > 2000) break;
      node.tick(d);
      node.pollTransmit();
      for (const s of node.pollStream()) opened.push({ at: d, to: s.to, join: s.msg.join });
    }
    expect(opened).toEqual([{ at: 610, to: addr('seed'), join: false }]);
  });

  it('does not re-announce the members of the view it is handed at join and by the follow-up; other push-pulls re-announce what they bring', () => {
    const { node, events } = makeNode('new', [], { joinPushPullDelayMs: 500 }, [addr('seed')]);
    node.start(0);
    const [req] = node.pollStream();
    const seed = makeNode('seed', ['b', 'c']).node;
    seed.start(0);
    node.handleStream(addr('seed'), seed.handleStream(addr('new'), req!.msg, 100)!, 110);
    const alivesIn = (ts: Transmit[]): string[] => [...new Set(ofType(ts.flatMap((t) => t.msgs), MessageType.Alive).map((m) => m.id))].sort();
    // Before the follow-up: it announces itself only, not seed, b and c (every member already knows them).
    let sent = runTimers(node, 600);
    expect(alivesIn(sent)).toEqual(['new']);
    // The follow-up (opened at 610) brings d, who joined the seed meanwhile: d announces itself, so this member does not.
    runTimers(node, 610);
    const followUpAck: SynAck = { type: MessageType.SynAck, source: 'seed', records: [record('d')], requests: [] };
    node.handleStream(addr('seed'), followUpAck, 620);
    expect(events.filter((e) => e.type === 'join').map((e) => e.member.id).sort()).toEqual(['b', 'c', 'd', 'seed']);
    sent = runTimers(node, 1500);
    expect(alivesIn(sent).filter((id) => id !== 'new')).toEqual([]);
    // A later push-pull (here with b) that brings a member we did not know spreads it: that may be a healed partition.
    node.handleStream(addr('b'), { type: MessageType.SynAck, source: 'b', records: [record('e')], requests: [] }, 1600);
    sent = runTimers(node, 2500);
    expect(alivesIn(sent)).toContain('e');
    expect(alivesIn(sent)).not.toContain('d');
  });
  it('push-pull sends only what the other side lacks (digests first)', () => {
    const a = makeNode('a', ['b', 'c']).node;
    const b = makeNode('b', ['a', 'c']).node;
    a.start(0);
    b.start(0);
    b.setLocalState('http', 'b:7000');
    const syn = { type: MessageType.Syn, source: 'a', sourceAddr: addr('a'), join: false, digests: a.members().map((m) => ({ id: m.id, generation: m.generation, incarnation: m.incarnation, status: m.status, version: m.stateVersion, heartbeat: 0 })) } as const;
    const synAck = b.handleStream(addr('a'), syn, 10) as SynAck;
    expect(synAck.records.map((r) => r.id)).toEqual(['b']);
    expect(synAck.records[0]!.entries.map((e) => e.key)).toEqual(['http']);
    expect(synAck.requests).toEqual([]);
    expect(a.handleStream(addr('b'), synAck, 20)).toBeUndefined();
    expect(a.stateOf('b', 'http')).toBe('b:7000');
  });

  it('push-pull compares liveness and state separately: each side sends what it has newer', () => {
    const x = makeNode('x', ['m']).node;
    x.start(0);
    x.handlePacket(addr('m'), [{ type: MessageType.Alive, id: 'm', address: addr('m'), generation: 1, incarnation: 2 }], 1);
    const synAck = x.handleStream(
      addr('p'),
      { type: MessageType.Syn, source: 'p', sourceAddr: addr('p'), join: false, digests: [{ id: 'm', generation: 1, incarnation: 1, status: 'alive', version: 5, heartbeat: 0 }] },
      2,
    ) as SynAck;
    expect(synAck.records.find((r) => r.id === 'm')).toMatchObject({ incarnation: 2, entries: [] });
    expect(synAck.requests).toEqual([{ id: 'm', generation: 1, incarnation: 2, status: 'alive', version: 0, heartbeat: 0 }]);
    x.handleStream(addr('p'), { type: MessageType.SynAck2, source: 'p', records: [record('m', { incarnation: 1, entries: [{ key: 'k', value: 'v', version: 5 }] })] }, 3);
    expect(x.stateOf('m', 'k')).toBe('v');
    expect(x.incarnationOf('m')).toEqual({ generation: 1, incarnation: 2 });
  });

  it('a graceful leave is announced and seen as left', () => {
    const a = makeNode('a', ['b']).node;
    const { node: b, events } = makeNode('b', ['a']);
    a.start(0);
    b.start(0);
    a.pollTransmit();
    a.leave(100);
    const msgs = a.pollTransmit().flatMap((t) => t.msgs);
    expect(ofType(msgs, MessageType.Left)[0]).toMatchObject({ id: 'a', incarnation: 0 });
    b.handlePacket(addr('a'), msgs, 110);
    expect(b.statusOf('a')).toBe('left');
    expect(events.map((e) => e.type)).toEqual(['left']);
    expect(() => a.setLocalState('k', 'v')).toThrowError(GossipError);
  });

  it('a restarted member (higher generation) replaces its dead record at once, state reset', () => {
    const { node, events } = makeNode('a', ['b']);
    node.start(0);
    node.handlePacket(addr('b'), [{ type: MessageType.StateUpdate, id: 'b', generation: 1, base: 0, entries: [{ key: 'k', value: 'old', version: 5 }] }], 1);
    node.handlePacket(addr('c'), [{ type: MessageType.Dead, id: 'b', generation: 1, incarnation: 3, from: 'c' }], 10);
    expect(node.statusOf('b')).toBe('dead');
    node.handlePacket(addr('b'), [{ type: MessageType.Alive, id: 'b', address: addr('b'), generation: 2, incarnation: 0 }], 20);
    expect(node.statusOf('b')).toBe('alive');
    expect(node.stateOf('b', 'k')).toBeUndefined();
    expect(events.map((e) => e.type)).toEqual(['update', 'dead', 'alive']);
  });

  it('reaps dead members after reapDeadAfterMs and contacts dead members to re-merge', () => {
    const { node } = makeNode('a', ['b', 'c'], { reapDeadAfterMs: 120_000, reconnectIntervalMs: 5000 });
    node.start(0);
    node.handlePacket(addr('c'), [{ type: MessageType.Dead, id: 'b', generation: 1, incarnation: 0, from: 'c' }], 10);
    const streamsTo: string[] = [];
    for (let guard = 0; guard < 10_000; guard++) {
      const d = node.nextDeadline()!;
      if (d > 100_000) break;
      node.tick(d);
      node.pollTransmit();
      for (const s of node.pollStream()) streamsTo.push(s.to);
    }
    expect(streamsTo).toContain(addr('b'));
    runTimers(node, 140_000);
    expect(node.statusOf('b')).toBeUndefined();
  });
});

describe('GossipNode: member state and dissemination', () => {
  it('piggybacks a state update on the next packet; receivers merge by version and ignore older', () => {
    const a = makeNode('a', ['b']).node;
    const { node: b, events } = makeNode('b', ['a']);
    a.start(0);
    b.start(0);
    a.pollTransmit();
    a.setLocalState('http', 'one');
    a.setLocalState('http', 'two');
    a.handlePacket(addr('b'), [{ type: MessageType.Ping, seqNo: 1, target: 'a', source: 'b', sourceAddr: addr('b') }], 5);
    const msgs = a.pollTransmit().flatMap((t) => t.msgs);
    const upd = ofType(msgs, MessageType.StateUpdate)[0] as StateUpdate;
    expect(upd.entries).toEqual([{ key: 'http', value: 'two', version: 2 }]);
    b.handlePacket(addr('a'), msgs, 10);
    expect(b.stateOf('a', 'http')).toBe('two');
    b.handlePacket(addr('a'), [{ ...upd, entries: [{ key: 'http', value: 'one', version: 1 }] }], 20);
    expect(b.stateOf('a', 'http')).toBe('two');
    expect(events.filter((e) => e.type === 'update')).toHaveLength(1);
    expect(events.find((e) => e.type === 'update')!.keys).toEqual(['http']);
  });

  it('an update received after a gap is merged without claiming its version; the next push-pull brings what was missed', () => {
    // What a 5-process cluster test hit: a member learned of b through a rumor, then got only b's later key-count
    // update. Taking that update's version as its own would make every push-pull digest say it has all of b's state,
    // and b's HTTP address would never arrive.
    const b = makeNode('b', []).node;
    b.start(0);
    b.setLocalState('http', 'b:7000');
    b.setLocalState('keys', '1');
    b.setLocalState('keys', '2');
    const { node: a } = makeNode('a', []);
    a.start(0);
    a.handlePacket(addr('c'), [{ type: MessageType.Alive, id: 'b', address: addr('b'), generation: 1, incarnation: 0 }], 1);
    a.handlePacket(addr('c'), [{ type: MessageType.StateUpdate, id: 'b', generation: 1, base: 2, entries: [{ key: 'keys', value: '2', version: 3 }] }], 2);
    expect(a.stateOf('b', 'keys')).toBe('2');
    expect(a.stateOf('b', 'http')).toBeUndefined();
    const digestOfB = (): number => a.members().find((m) => m.id === 'b')!.stateVersion;
    expect(digestOfB()).toBe(0);

    const digests = a.members().map((m) => ({ id: m.id, generation: m.generation, incarnation: m.incarnation, status: m.status, version: m.stateVersion, heartbeat: 0 }));
    const synAck = b.handleStream(addr('a'), { type: MessageType.Syn, source: 'a', sourceAddr: addr('a'), join: false, digests }, 10) as SynAck;
    a.handleStream(addr('b'), synAck, 11);
    expect(a.stateOf('b', 'http')).toBe('b:7000');
    expect(digestOfB()).toBe(3);
  });

  it('an update whose base the receiver holds moves its version to the update\'s top, and is passed on with that base', () => {
    const { node: a } = makeNode('a', ['b', 'c']);
    a.start(0);
    a.pollTransmit();
    const version = (): number => a.members().find((m) => m.id === 'b')!.stateVersion;
    const update = (base: number, entries: StateUpdate['entries']): StateUpdate => ({ type: MessageType.StateUpdate, id: 'b', generation: 1, base, entries });
    a.handlePacket(addr('b'), [update(0, [{ key: 'http', value: 'b:7000', version: 1 }, { key: 'keys', value: '1', version: 2 }])], 1);
    expect(version()).toBe(2);
    a.handlePacket(addr('b'), [update(2, [{ key: 'keys', value: '2', version: 3 }])], 2);
    expect(version()).toBe(3);
    a.handlePacket(addr('b'), [update(4, [{ key: 'keys', value: '4', version: 5 }])], 3);
    expect(a.stateOf('b', 'keys')).toBe('4');
    expect(version()).toBe(3);
    // The relayed rumor merges what this node passed on; its intervals (0,3] and (4,5] do not touch, so the later base stays.
    a.handlePacket(addr('c'), [{ type: MessageType.Ping, seqNo: 1, target: 'a', source: 'c', sourceAddr: addr('c') }], 4);
    const relayed = ofType(msgsTo(a.pollTransmit(), addr('c')), MessageType.StateUpdate).find((u) => u.id === 'b')!;
    expect(relayed.base).toBe(4);
    expect(Object.fromEntries(relayed.entries.map((e) => [e.key, e.version]))).toEqual({ http: 1, keys: 5 });
  });

  it('a local change queued on top of an unsent one covers both: one rumor from the lower base', () => {
    const a = makeNode('a', ['b']).node;
    a.start(0);
    a.pollTransmit();
    a.setLocalState('http', 'a:7000');
    a.setLocalState('keys', '1');
    a.handlePacket(addr('b'), [{ type: MessageType.Ping, seqNo: 1, target: 'a', source: 'b', sourceAddr: addr('b') }], 5);
    const upd = ofType(msgsTo(a.pollTransmit(), addr('b')), MessageType.StateUpdate)[0]!;
    expect(upd.base).toBe(0);
    expect(upd.entries.map((e) => e.version).sort()).toEqual([1, 2]);
  });

  it.each([
    ['push', [false]],
    ['pull', [true]],
    ['push-pull', [true]],
  ] as const)('mode %s: the gossip round %s', (mode, [sendsPullReq]) => {
    const { node } = makeNode('a', ['b', 'c', 'd', 'e'], { mode });
    node.start(0);
    const sent = runTimers(node, 400);
    const pulls = sent.flatMap((t) => ofType(t.msgs, MessageType.PullReq));
    expect(pulls.length > 0).toBe(sendsPullReq);
    if (!sendsPullReq) expect(sent.flatMap((t) => ofType(t.msgs, MessageType.Alive)).length).toBeGreaterThan(0);
    // pull only asks; push-pull also offers its rumors in the same datagram.
    const withPull = sent.filter((t) => ofType(t.msgs, MessageType.PullReq).length > 0);
    if (mode === 'pull') for (const t of withPull) expect(t.msgs).toHaveLength(1);
    if (mode === 'push-pull') expect(withPull.some((t) => t.msgs.length > 1)).toBe(true);
  });

  it('answers a PullReq with its rumors, within the packet budget', () => {
    const { node } = makeNode('a', Array.from({ length: 200 }, (_, i) => `p${i}`), { mode: 'pull' });
    node.start(0);
    for (let i = 0; i < 200; i++) node.handlePacket(addr('x'), [{ type: MessageType.Alive, id: `q${i}`, address: addr(`q${i}`), generation: 1, incarnation: 0 }], 1);
    node.pollTransmit();
    node.handlePacket(addr('z'), [{ type: MessageType.PullReq, source: 'z', sourceAddr: addr('z') }], 2);
    const [t] = node.pollTransmit();
    expect(t!.to).toBe(addr('z'));
    expect(t!.msgs.length).toBeGreaterThan(5);
    expect(t!.msgs.length).toBeLessThan(200);
  });
});

describe('GossipNode: bounds and bad input', () => {
  it('rejects oversized local state with typed errors', () => {
    const { node } = makeNode('a', [], { stateEntriesMax: 2, stateKeyBytesMax: 4, stateValueBytesMax: 4 });
    expect(() => node.setLocalState('toolong', 'v')).toThrowError(expect.objectContaining({ code: 'GOSSIP_STATE_KEY_TOO_LONG' }));
    expect(() => node.setLocalState('k', 'toolong')).toThrowError(expect.objectContaining({ code: 'GOSSIP_STATE_VALUE_TOO_LONG' }));
    node.setLocalState('k1', 'v');
    node.setLocalState('k2', 'v');
    expect(() => node.setLocalState('k3', 'v')).toThrowError(expect.objectContaining({ code: 'GOSSIP_STATE_TOO_MANY_KEYS' }));
    expect(() => new GossipNode({ id: '', address: 'x', generation: 1, random: Math.random })).toThrowError(GossipError);
    for (const bad of [{ suspicionConfirmations: -1 }, { suspicionConfirmations: 1.5 }, { suspicionFloorMult: Number.NaN }, { clockSamplesMax: 0 }, { userEventBufferMax: 0 }, { joinRetransmitMult: 0.5 }]) {
      expect(() => new GossipNode({ id: 'a', address: 'x', generation: 1, random: Math.random, ...bad }), JSON.stringify(bad)).toThrowError(expect.objectContaining({ code: 'GOSSIP_CONFIG_INVALID' }));
    }
  });

  it('an update with an entry dropped as oversized is not taken as covering its interval', () => {
    const { node } = makeNode('a', ['b'], { stateValueBytesMax: 4 });
    node.start(0);
    node.handlePacket(addr('b'), [{ type: MessageType.StateUpdate, id: 'b', generation: 1, base: 0, entries: [{ key: 'k', value: 'far too long', version: 1 }, { key: 'j', value: 'ok', version: 2 }] }], 1);
    expect(node.stateOf('b', 'j')).toBe('ok');
    expect(node.members().find((m) => m.id === 'b')!.stateVersion).toBe(0);
  });

  it('drops oversized remote state entries and counts them', () => {
    const { node } = makeNode('a', ['b'], { stateValueBytesMax: 4 });
    node.start(0);
    node.handlePacket(addr('b'), [{ type: MessageType.StateUpdate, id: 'b', generation: 1, base: 0, entries: [{ key: 'k', value: 'far too long', version: 1 }] }], 1);
    expect(node.stateOf('b', 'k')).toBeUndefined();
    expect(node.stats.dropped).toBe(1);
  });

  it('bounds relayed probes and known members', () => {
    const { node } = makeNode('a', ['b'], { pendingProbesMax: 2, membersMax: 3 });
    node.start(0);
    for (let i = 0; i < 5; i++) {
      node.handlePacket(addr('b'), [{ type: MessageType.PingReq, seqNo: i, target: `t${i}`, targetAddr: addr(`t${i}`), source: 'b', sourceAddr: addr('b'), nack: true }], 1);
    }
    expect(node.stats.dropped).toBe(3);
    for (let i = 0; i < 5; i++) node.handlePacket(addr('x'), [{ type: MessageType.Alive, id: `m${i}`, address: addr(`m${i}`), generation: 1, incarnation: 0 }], 2);
    expect(node.members()).toHaveLength(3);
  });

  it('never sends a packet over the byte budget estimate', () => {
    const { node } = makeNode('a', Array.from({ length: 50 }, (_, i) => `p${i}`), { packetBudgetBytes: 600 });
    node.start(0);
    for (let i = 0; i < 100; i++) node.handlePacket(addr('x'), [{ type: MessageType.Alive, id: `q${i}-${'x'.repeat(30)}`, address: addr(`q${i}`), generation: 1, incarnation: 0 }], 1);
    const sent = runTimers(node, 5000);
    expect(sent.length).toBeGreaterThan(0);
    for (const t of sent) {
      // Each message packed alone (as in a compound packet), plus its length prefix.
      const bytes = t.msgs.reduce((n, m) => n + pack(m).length + MESSAGE_OVERHEAD_BYTES, 0);
      expect(bytes).toBeLessThanOrEqual(600);
    }
  });
});

describe('GossipNode: clock offsets from probe round trips', () => {
  /** Two cores whose wall clocks differ by `skewMs` (b ahead); `t` is true time. */
  function pair(skewMs: number): { a: GossipNode; b: GossipNode; clock: { t: number } } {
    const clock = { t: 0 };
    const a = new GossipNode({ id: 'a', address: addr('a'), generation: 1, random: createRandom(1).next, wallClock: () => 1e12 + clock.t });
    const b = new GossipNode({ id: 'b', address: addr('b'), generation: 1, random: createRandom(2).next, wallClock: () => 1e12 + clock.t + skewMs });
    a.loadView([record('b')], 0);
    b.loadView([record('a')], 0);
    a.start(0);
    b.start(0);
    return { a, b, clock };
  }

  /** Run a's timers until it pings b; deliver the ping `oneWayMs` later and the ack `oneWayMs` after that. */
  function probeOnce(a: GossipNode, b: GossipNode, clock: { t: number }, oneWayMs: number, ackTo = a): Ack {
    for (let guard = 0; guard < 1000; guard++) {
      const d = a.nextDeadline()!;
      clock.t = d;
      a.tick(d);
      b.pollTransmit();
      const ping = a.pollTransmit().flatMap((t) => ofType(t.msgs, MessageType.Ping)).find((p) => p.target === 'b');
      if (ping === undefined) continue;
      clock.t += oneWayMs;
      b.handlePacket(addr('a'), [ping], clock.t);
      const ack = ofType(b.pollTransmit().flatMap((t) => t.msgs), MessageType.Ack)[0]!;
      clock.t += oneWayMs;
      ackTo.handlePacket(addr('b'), [ack], clock.t);
      return ack;
    }
    throw new Error('a never pinged b');
  }

  it('stamps its wall clock on every Ack and estimates the prober-side offset within half the round trip', () => {
    const { a, b, clock } = pair(800);
    const ack = probeOnce(a, b, clock, 10);
    expect(ack.wallMs).toBe(1e12 + clock.t - 10 + 800);
    const est = a.clockOffsets(clock.t).get('b')!;
    expect(est.errorMs).toBe(10 + 1);
    expect(Math.abs(est.offsetMs - 800)).toBeLessThanOrEqual(est.errorMs);
    expect(est.measuredAtMs).toBe(clock.t);
    expect(a.stats.clockSamples).toBe(1);
  });

  it('prefers the lowest round trip among its samples', () => {
    const { a, b, clock } = pair(-250);
    probeOnce(a, b, clock, 40);
    probeOnce(a, b, clock, 2);
    probeOnce(a, b, clock, 30);
    const est = a.clockOffsets(clock.t).get('b')!;
    expect(est.errorMs).toBeLessThan(2 + 1 + 1);
    expect(Math.abs(est.offsetMs + 250)).toBeLessThanOrEqual(est.errorMs);
  });

  it('a relay passes the target\'s wall clock on with the ack', () => {
    const { node: r } = makeNode('r', ['a', 'c']);
    r.start(0);
    r.pollTransmit();
    r.handlePacket(addr('a'), [{ type: MessageType.PingReq, seqNo: 3, target: 'c', targetAddr: addr('c'), source: 'a', sourceAddr: addr('a'), nack: true }], 100);
    const [ping] = ofType(msgsTo(r.pollTransmit(), addr('c')), MessageType.Ping);
    r.handlePacket(addr('c'), [{ type: MessageType.Ack, seqNo: ping!.seqNo, source: 'c', wallMs: 123_456 }], 110);
    expect(ofType(msgsTo(r.pollTransmit(), addr('a')), MessageType.Ack)).toEqual([{ type: MessageType.Ack, seqNo: 3, source: 'c', wallMs: 123_456 }]);
  });

  it('without a wall clock: Acks carry none and nothing is measured; an Ack without one is still an ack', () => {
    const { node } = makeNode('a', ['b']);
    node.start(0);
    node.pollTransmit();
    node.handlePacket(addr('b'), [{ type: MessageType.Ping, seqNo: 7, target: 'a', source: 'b', sourceAddr: addr('b') }], 10);
    const [ack] = ofType(msgsTo(node.pollTransmit(), addr('b')), MessageType.Ack);
    expect(ack).toEqual({ type: MessageType.Ack, seqNo: 7, source: 'a' });
    const { a, clock } = pair(0);
    const old = makeNode('b', ['a']).node; // an older member: no wall clock on its acks
    old.start(0);
    probeOnce(a, old, clock, 5);
    expect(a.stats.clockSamples).toBe(0);
    expect(a.clockOffsets(clock.t).size).toBe(0);
    expect(a.awareness.score).toBe(0);
  });

  it('forgets a member\'s samples when it restarts (a new life may run on another clock)', () => {
    const { a, b, clock } = pair(800);
    probeOnce(a, b, clock, 5);
    expect(a.clockOffsets(clock.t).has('b')).toBe(true);
    a.handlePacket(addr('b'), [{ type: MessageType.Alive, id: 'b', address: addr('b'), generation: 2, incarnation: 0 }], clock.t + 1);
    expect(a.clockOffsets(clock.t + 1).has('b')).toBe(false);
  });
});

describe('GossipNode: user events', () => {
  const payload = (text: string): Uint8Array => new TextEncoder().encode(text);
  const ping = (from: string, to: string, seqNo = 1): Ping => ({ type: MessageType.Ping, seqNo, target: to, source: from, sourceAddr: addr(from) });

  it('delivers a broadcast locally and, by rumor, once at each receiver, which passes it on', () => {
    const a = makeNode('a', ['b', 'c']).node;
    const b = makeNode('b', ['a', 'c']).node;
    const got: string[] = [];
    b.onUserEvent((e) => got.push(`${e.origin}:${e.seq}:${e.name}:${new TextDecoder().decode(e.payload)}`));
    a.start(0);
    b.start(0);
    a.pollTransmit();
    b.pollTransmit();
    const local = a.broadcastEvent('deploy', payload('v42'), 1);
    expect(local).toMatchObject({ origin: 'a', seq: 1, name: 'deploy' });
    expect(a.pollUserEvents().map((e) => e.name)).toEqual(['deploy']);
    a.handlePacket(addr('b'), [ping('b', 'a')], 2);
    const msgs = a.pollTransmit().flatMap((t) => t.msgs);
    expect(ofType(msgs, MessageType.UserEvent)).toHaveLength(1);
    b.handlePacket(addr('a'), msgs, 3);
    b.handlePacket(addr('c'), msgs, 4); // the same event again, by another path
    expect(got).toEqual(['a:1:deploy:v42']);
    expect(b.stats).toMatchObject({ userEventsDelivered: 1, userEventsDuplicate: 1 });
    // b relays it.
    b.handlePacket(addr('c'), [ping('c', 'b')], 5);
    expect(ofType(msgsTo(b.pollTransmit(), addr('c')), MessageType.UserEvent).map((e) => e.seq)).toEqual([1]);
  });

  it('a member the rumor missed gets the event at its next push-pull; a joiner does not get events from before it joined', () => {
    const a = makeNode('a', ['b']).node;
    const b = makeNode('b', ['a']).node;
    const gotB: number[] = [];
    b.onUserEvent((e) => gotB.push(e.seq));
    a.start(0);
    b.start(0);
    a.broadcastEvent('one', payload('1'), 1);
    a.broadcastEvent('two', payload('2'), 2);
    // b heard nothing (all lost). b's periodic push-pull with a:
    const synOfB = { type: MessageType.Syn, source: 'b', sourceAddr: addr('b'), join: false, digests: b.members().map((m) => ({ id: m.id, generation: m.generation, incarnation: m.incarnation, status: m.status, version: m.stateVersion, heartbeat: 0 })) } as const;
    const synAck = a.handleStream(addr('b'), synOfB, 10) as SynAck;
    expect(synAck.events?.map((e) => e.seq)).toEqual([1, 2]);
    b.handleStream(addr('a'), synAck, 11);
    expect(gotB).toEqual([1, 2]);

    // A new member joins through a: the events before its join are recorded, not delivered.
    const { node: c } = makeNode('c', [], {}, [addr('a')]);
    const gotC: number[] = [];
    c.onUserEvent((e) => gotC.push(e.seq));
    c.start(20);
    const [join] = c.pollStream();
    const joinAck = a.handleStream(addr('c'), join!.msg, 21) as SynAck;
    c.handleStream(addr('a'), joinAck, 22);
    expect(gotC).toEqual([]);
    // Later events reach it, and old copies arriving later are not delivered either.
    a.broadcastEvent('three', payload('3'), 30);
    a.handlePacket(addr('c'), [ping('c', 'a')], 31);
    c.handlePacket(addr('a'), msgsTo(a.pollTransmit(), addr('c')), 32);
    expect(gotC).toEqual([3]);
    const replay = b.handleStream(addr('c'), { type: MessageType.Syn, source: 'c', sourceAddr: addr('c'), join: false, digests: [] }, 40) as SynAck;
    c.handleStream(addr('b'), replay, 41);
    expect(gotC).toEqual([3]);
  });

  it('push-pull asks the initiator for events it has delivered further', () => {
    const a = makeNode('a', ['b']).node;
    const b = makeNode('b', ['a']).node;
    a.start(0);
    b.start(0);
    a.broadcastEvent('x', payload('x'), 1);
    // a opens the push-pull: its digest of itself says events up to 1; b has none, asks, and a's SynAck2 carries it.
    const [req] = (() => {
      for (let t = 0; t < 200_000; t += 1000) {
        a.tick(t);
        a.pollTransmit();
        const s = a.pollStream();
        if (s.length > 0) return s;
      }
      return [];
    })();
    const synAck = b.handleStream(addr('a'), req!.msg, 5) as SynAck;
    expect(synAck.requests.find((d) => d.id === 'a')).toBeDefined();
    const ack2 = a.handleStream(addr('b'), synAck, 6) as SynAck2;
    expect(ack2.events?.map((e) => e.name)).toEqual(['x']);
    const got: string[] = [];
    b.onUserEvent((e) => got.push(e.name));
    b.handleStream(addr('a'), ack2, 7);
    expect(got).toEqual(['x']);
  });

  it('bounds: size and this member\'s queue of events still spreading, with typed errors', () => {
    const { node } = makeNode('a', ['b'], { userEventBytesMax: 16, userEventQueueMax: 2 });
    node.start(0);
    expect(() => node.broadcastEvent('name', new Uint8Array(13), 1)).toThrowError(expect.objectContaining({ code: 'GOSSIP_EVENT_TOO_LARGE' }));
    node.broadcastEvent('e', new Uint8Array(1), 1);
    node.broadcastEvent('e', new Uint8Array(1), 1);
    expect(() => node.broadcastEvent('e', new Uint8Array(1), 1)).toThrowError(expect.objectContaining({ code: 'GOSSIP_EVENT_QUEUE_FULL' }));
    expect(node.stats.userEventsRefused).toBe(2);
    // Once they have been sent their λ·log N times, there is room again.
    runTimers(node, 60_000);
    expect(node.broadcastEvent('e', new Uint8Array(1), 60_001).seq).toBe(3);
    // Received events over the bound are dropped.
    node.handlePacket(addr('b'), [{ type: MessageType.UserEvent, origin: 'b', generation: 1, seq: 1, name: 'big', payload: new Uint8Array(100) }], 60_002);
    expect(node.pollUserEvents().filter((e) => e.origin === 'b')).toEqual([]);
  });
});
