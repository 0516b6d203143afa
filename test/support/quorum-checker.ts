/**
 * Continuous `quorum` writes and reads against real nodes, recording every
 * acknowledged write and every read, and the checks of issue 16 on what was
 * recorded: no acknowledged write lost, no quorum read that misses a write
 * acknowledged before it started (or returns an older version), every key
 * on exactly its RF owners (read from each replica directly).
 */
import { hashKey, parseVersion, compareVersions, type StoredRecord, type Version } from '@hearsay/storage';
import { partitionOfHash } from '@hearsay/cluster';

export interface Target {
  readonly id: string;
  readonly url: string;
}

interface Acked {
  readonly key: string;
  readonly version: Version;
  /** Order among acknowledgements and read starts. */
  readonly seq: number;
}

interface Read {
  readonly key: string;
  readonly via: string;
  readonly startSeq: number;
  readonly version: Version | undefined;
}

const versionOfEtag = (etag: string | null): Version | undefined => {
  if (etag === null) return undefined;
  return parseVersion(etag.replace(/^"|"$/g, ''));
};
const show = (v: Version): string => `${v.ms}.${v.counter}.${v.node}`;

/**
 * `writers` loops of quorum PUTs (every value unique) and `readers` loops of
 * quorum GETs of keys written so far, each through a random node of
 * `targets()` (the test keeps it to the nodes that serve). Failed requests
 * (503, a node going away) are counted, not recorded: only a 204 is an
 * acknowledgement and only a 200 or 404 a read.
 */
export class QuorumWorkload {
  readonly acked: Acked[] = [];
  readonly reads: Read[] = [];
  failedWrites = 0;
  failedReads = 0;
  #seq = 0;
  #stop = false;
  #loops: Promise<void>[] = [];
  #written: string[] = [];
  #n = 0;

  constructor(
    private readonly targets: () => readonly Target[],
    private readonly options: { readonly keys: number; readonly writers: number; readonly readers: number; readonly prefix: string },
  ) {}

  start(): void {
    for (let i = 0; i < this.options.writers; i++) this.#loops.push(this.#writeLoop());
    for (let i = 0; i < this.options.readers; i++) this.#loops.push(this.#readLoop());
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await Promise.all(this.#loops);
  }

  /** Resolves once `count` more writes were acknowledged (the workload makes progress). */
  async progress(count: number, deadlineMs = 30_000): Promise<void> {
    const want = this.acked.length + count;
    const until = Date.now() + deadlineMs;
    while (this.acked.length < want) {
      if (Date.now() > until) throw new Error(`the workload acknowledged ${this.acked.length} writes, not ${want}, within ${deadlineMs} ms (failed ${this.failedWrites})`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  #pick(): Target | undefined {
    const all = this.targets();
    return all[Math.floor(Math.random() * all.length)];
  }

  async #writeLoop(): Promise<void> {
    while (!this.#stop) {
      const target = this.#pick();
      if (target === undefined) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        continue;
      }
      const key = `${this.options.prefix}${Math.floor(Math.random() * this.options.keys)}`;
      const value = `w${this.#n++}`;
      try {
        const response = await fetch(`${target.url}/v1/kv/${encodeURIComponent(key)}?consistency=quorum`, { method: 'PUT', body: value, signal: AbortSignal.timeout(15_000) });
        if (response.status === 204) {
          const version = versionOfEtag(response.headers.get('etag'));
          if (version === undefined) throw new Error('a 204 without an ETag');
          this.acked.push({ key, version, seq: ++this.#seq });
          if (!this.#written.includes(key)) this.#written.push(key);
        } else {
          await response.arrayBuffer();
          this.failedWrites++;
        }
      } catch {
        this.failedWrites++;
      }
    }
  }

  async #readLoop(): Promise<void> {
    while (!this.#stop) {
      const target = this.#pick();
      const key = this.#written[Math.floor(Math.random() * this.#written.length)];
      if (target === undefined || key === undefined) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        continue;
      }
      const startSeq = ++this.#seq;
      try {
        const response = await fetch(`${target.url}/v1/kv/${encodeURIComponent(key)}?consistency=quorum`, { signal: AbortSignal.timeout(15_000) });
        await response.arrayBuffer();
        if (response.status === 200) this.reads.push({ key, via: target.id, startSeq, version: versionOfEtag(response.headers.get('etag')) });
        else if (response.status === 404) this.reads.push({ key, via: target.id, startSeq, version: undefined });
        else this.failedReads++;
      } catch {
        this.failedReads++;
      }
    }
  }

  /** The highest acknowledged version of each key. */
  topAcked(): Map<string, Version> {
    const top = new Map<string, Version>();
    for (const a of this.acked) {
      const cur = top.get(a.key);
      if (cur === undefined || compareVersions(a.version, cur) > 0) top.set(a.key, a.version);
    }
    return top;
  }

  /** Quorum reads that missed a write acknowledged before they started, or answered an older version. */
  staleReads(): string[] {
    const problems: string[] = [];
    const byKey = new Map<string, Acked[]>();
    for (const a of this.acked) byKey.set(a.key, [...(byKey.get(a.key) ?? []), a]);
    for (const r of this.reads) {
      let top: Acked | undefined;
      for (const a of byKey.get(r.key) ?? []) if (a.seq < r.startSeq && (top === undefined || compareVersions(a.version, top.version) > 0)) top = a;
      if (top === undefined) continue;
      if (r.version === undefined) problems.push(`${r.key} via ${r.via}: 404, but ${show(top.version)} was acknowledged before the read`);
      else if (compareVersions(r.version, top.version) < 0) problems.push(`${r.key} via ${r.via}: ${show(r.version)}, older than ${show(top.version)} acknowledged before the read`);
    }
    return problems;
  }
}

/**
 * What each live node holds (its own records, read directly), against the
 * owners of each key's partition: returns the acknowledged writes lost on an
 * owner and the keys not on exactly their owners.
 */
export function checkPlacement(
  workload: QuorumWorkload,
  held: ReadonlyMap<string, readonly StoredRecord[]>,
  ownersOf: (partition: number) => readonly string[],
  partitionBits = 8,
): { lost: string[]; misplaced: string[] } {
  const lost: string[] = [];
  const misplaced: string[] = [];
  const byNode = new Map<string, Map<string, StoredRecord>>();
  for (const [id, records] of held) byNode.set(id, new Map(records.map((r) => [r.key, r])));
  for (const [key, version] of workload.topAcked()) {
    const owners = [...ownersOf(partitionOfHash(hashKey(key), partitionBits))].sort();
    for (const id of owners) {
      const r = byNode.get(id)?.get(key);
      if (r === undefined || compareVersions(r.version, version) < 0) lost.push(`${key} on ${id}: ${r === undefined ? 'missing' : show(r.version)}, acknowledged ${show(version)}`);
    }
    const holders = [...byNode].filter(([, m]) => m.has(key)).map(([id]) => id).sort();
    if (holders.join(',') !== owners.join(',')) misplaced.push(`${key} on ${holders.join(',') || 'no node'}, owners ${owners.join(',')}`);
  }
  return { lost, misplaced };
}
