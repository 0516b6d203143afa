/**
 * Idle TCP connections to a seed's gossip port must not keep a new node out
 * (issue 17): real `hearsay start` processes on loopback, with about 100
 * connections from outside the cluster held open to the seed's gossip port
 * (each re-opened as soon as the seed closes it) while a second node joins
 * through that seed. Before the fix, such connections took the seed's 64
 * stream slots and the join failed for as long as they were held.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { aliveMembers, freePorts, TestNode, until } from './cluster-processes.ts';

const IDLE_CONNECTIONS = 100;
const JOIN_DEADLINE_MS = 20_000;

/** Holds `count` idle connections to host:port, opening a new one whenever one is closed, until stopped. */
class IdleFlood {
  readonly #sockets = new Set<Socket>();
  #stopped = false;
  opened = 0;
  closedByPeer = 0;

  constructor(
    readonly host: string,
    readonly port: number,
    count: number,
  ) {
    for (let i = 0; i < count; i++) this.#open();
  }

  get open(): number {
    return this.#sockets.size;
  }

  #open(): void {
    if (this.#stopped) return;
    const socket = connect({ host: this.host, port: this.port });
    this.opened++;
    this.#sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => {
      this.#sockets.delete(socket);
      if (this.#stopped) return;
      this.closedByPeer++;
      // Re-open at once, as an attacker would; a short pause only so a refused port does not spin.
      setTimeout(() => this.#open(), 10);
    });
  }

  stop(): void {
    this.#stopped = true;
    for (const s of this.#sockets) s.destroy();
  }
}

let tmp: string | undefined;
const nodes: TestNode[] = [];
let flood: IdleFlood | undefined;

afterAll(async () => {
  flood?.stop();
  await Promise.all(nodes.map((n) => n.stop()));
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
});

describe('gossip under idle connections from outside the cluster', () => {
  it(`a new node joins through a seed that holds ${IDLE_CONNECTIONS} idle connections to its gossip port`, async () => {
    tmp = await mkdtemp(join(tmpdir(), 'hearsay-gossip-hostile-'));
    const [seedHttp, seedGossip, newHttp, newGossip] = await freePorts(4, true);
    const key = 'gossip-hostile-secret';
    const seed = new TestNode('seed', seedHttp!, seedGossip!, join(tmp, 'seed'), key, []);
    const joiner = new TestNode('joiner', newHttp!, newGossip!, join(tmp, 'joiner'), key, [seed.gossipAddress]);
    nodes.push(seed, joiner);
    seed.start();
    await until(async () => ((await fetch(`${seed.url}/v1/health`).catch(() => undefined))?.status === 200 ? true : undefined), () => seed.describe());

    flood = new IdleFlood('127.0.0.1', seed.gossipPort, IDLE_CONNECTIONS);
    await until(() => (flood!.opened >= IDLE_CONNECTIONS && flood!.open >= IDLE_CONNECTIONS * 0.9 ? true : undefined), () => `only ${flood!.open} idle connections open`);

    // How many idle connections were open while the joiner joined, sampled every 50 ms: the attack must
    // have gone on throughout, not only at the end (on a loaded machine the count at one instant swings
    // as the seed closes connections and the flood re-opens them).
    const openSamples: number[] = [];
    const sampler = setInterval(() => openSamples.push(flood!.open), 50);
    sampler.unref();
    const startedAt = Date.now();
    joiner.start();
    await until(
      async () => {
        const [fromSeed, fromJoiner] = await Promise.all([aliveMembers(seed), aliveMembers(joiner)]);
        return fromSeed.includes('joiner') && fromJoiner.includes('seed') ? true : undefined;
      },
      () => `the joiner did not join within ${JOIN_DEADLINE_MS} ms while ${flood!.open} idle connections were open (${flood!.closedByPeer} closed by the seed so far)\n${seed.describe()}\n${joiner.describe()}`,
      JOIN_DEADLINE_MS,
    );
    const joinedAfterMs = Date.now() - startedAt;
    clearInterval(sampler);
    // Under attack while it joined: the seed kept closing idle connections (handshake timeout or eviction)
    // and they kept coming back, so on average at least half of them were open.
    const meanOpen = openSamples.reduce((a, b) => a + b, 0) / Math.max(1, openSamples.length);
    expect(openSamples.length).toBeGreaterThan(0);
    expect(meanOpen).toBeGreaterThanOrEqual(IDLE_CONNECTIONS * 0.5);
    expect(seed.proc!.child.exitCode).toBeNull();
    console.log(`joined ${joinedAfterMs} ms after the joiner started, with ${meanOpen.toFixed(0)} idle connections open to the seed on average (${flood.closedByPeer} closed by the seed)`);
  }, 90_000);
});
