/**
 * Issue 13 with real processes and a real skewed clock: three `hearsay start`
 * processes on loopback, one of them restarted under libfaketime an hour
 * ahead (Debian's `faketime`, installed by .ci/run). While skewed it is
 * fenced and says so (health, /v1/cluster, hearsay status, /metrics, its
 * log), and writes through it are refused while writes and deletes through
 * the others are acknowledged. Its clock fixed, it refuses to start on the
 * high-water mark its skewed run left; started accepting it, and after
 * `hearsay repair` on every node, no acknowledged write is lost and no
 * acknowledged delete undone. (Three nodes show what five would: the skewed
 * node is beyond the offset of both others, each of them within one other.)
 * With the cluster key, internode requests to and from the skewed node are
 * refused for their timestamps, and the refusals say clock skew. The offsets
 * behind the fence are the ones gossip measures from its probes
 * (`GossipRuntime.clockOffsets()`): nothing in this test feeds them.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, del, get, localRecords, metric, put, runCli, TestCluster, until, type LogLine } from './cluster-processes.ts';

const HOUR_MS = 3_600_000;
/** An hour in ms as a message prints it, give or take 5 s (faketime's offset plus the measurement's error). */
const ABOUT_AN_HOUR = '3(?:59[5-9]|60[0-4])\\d{3}';
const hourly = (before: string, after: string): RegExp => new RegExp(`${before}${ABOUT_AN_HOUR}${after}`);
const FAKETIME = ['faketime', '-f', '+1h'];

let cluster: TestCluster;

beforeAll(async () => {
  try {
    execFileSync('faketime', ['-f', '+1h', 'true']);
  } catch (error) {
    throw new Error(`this test runs a node under libfaketime: install Debian's faketime package (.ci/run does): ${(error as Error).message}`);
  }
  cluster = await TestCluster.start(3, 'clock-skew-secret');
}, 90_000);

afterAll(async () => {
  await cluster?.stop();
});

interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly [field: string]: unknown };
}

async function health(url: string): Promise<{ status: number; body: Record<string, unknown> & Partial<ErrorBody> } | undefined> {
  const response = await api(`${url}/v1/health`).catch(() => undefined);
  if (response === undefined) return undefined;
  return { status: response.status, body: (await response.json()) as Record<string, unknown> & Partial<ErrorBody> };
}

describe('a node under a clock an hour ahead (libfaketime)', () => {
  it('is fenced and visible as such; writes through the others are acknowledged; fixed, its high-water-mark guard fires; accepted and repaired, nothing acknowledged is lost', async () => {
    const [n1, n2, n3] = [cluster.node('n1'), cluster.node('n2'), cluster.node('n3')];
    const keys = Array.from({ length: 8 }, (_, i) => `skew/k${i}`);
    const acknowledged = new Map<string, string | undefined>();
    for (const key of keys) {
      expect((await put(n1, key, `before ${key}`)).status).toBe(204);
      acknowledged.set(key, `before ${key}`);
    }

    // n3 restarts an hour ahead.
    await n3.stop();
    n3.start([], FAKETIME);
    const fenced = await until(
      async () => {
        const h = await health(n3.url);
        return h?.status === 503 && h.body.error?.['clockState'] === 'skewed' ? h.body.error : undefined;
      },
      () => `n3 was not fenced for its clock: ${n3.describe()}`,
    );
    expect(Math.abs((fenced['clockOffsetMs'] as number) - HOUR_MS)).toBeLessThan(5_000);
    expect(fenced['maxClockOffsetMs']).toBe(500);
    expect(fenced.message).toMatch(hourly("^clock skew: this node's clock is ", ' ms \\(±\\d+ ms\\) ahead of 2 of the 2 other members it can reach'));
    const fencedLog = await n3.proc!.waitForLog((l: LogLine) => l.level === 50 && l.msg.startsWith('fenced, refusing writes: clock skew'));
    expect(fencedLog['clockState']).toBe('skewed');
    expect(await metric(n3, 'hearsay_cluster_clock_state{state="skewed"}')).toBe(1);
    // The others see it an hour ahead, and stay ok themselves.
    type View = { members: Record<string, unknown>[] };
    // (Polled until n1 has measured n3's new life, and its verdict, reused for up to 100 ms, counts that measurement.)
    const view = await until(
      async () => {
        const v = (await (await api(`${n1.url}/v1/cluster`)).json()) as View;
        const offset = v.members.find((m) => m['id'] === 'n3')?.['clockOffsetMs'];
        const verdict = v.members.find((m) => m['id'] === 'n1')?.['clock'] as { beyond?: number } | undefined;
        return typeof offset === 'number' && offset > HOUR_MS / 2 && verdict?.beyond === 1 ? v : undefined;
      },
      () => 'n1 never measured the clock of n3 an hour ahead',
    );
    const seen = view.members.find((m) => m['id'] === 'n3')!;
    expect(Math.abs((seen['clockOffsetMs'] as number) - HOUR_MS)).toBeLessThan(5_000);
    expect(view.members.find((m) => m['id'] === 'n1')!['clock']).toMatchObject({ state: 'ok', within: 1, beyond: 1 });
    const status = await runCli(['status', '--node', n1.url]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(hourly('n3 +alive/serving .* \\+', '±\\d+ ms !'));
    expect((await health(n1.url))?.status).toBe(200);
    // /metrics shows each member's offset as gossip measured it: n3 an hour ahead of n1, n2 within the offset; and the
    // skewed n3 sees both others an hour behind it.
    expect(Math.abs((await metric(n1, 'hearsay_cluster_clock_offset_seconds{member="n3"}'))! - HOUR_MS / 1000)).toBeLessThan(5);
    expect(Math.abs((await metric(n1, 'hearsay_cluster_clock_offset_seconds{member="n2"}'))!)).toBeLessThan(0.5);
    expect(await metric(n1, 'hearsay_cluster_clock_state{state="ok"}')).toBe(1);
    for (const other of ['n1', 'n2']) {
      expect(Math.abs((await metric(n3, `hearsay_cluster_clock_offset_seconds{member="${other}"}`))! + HOUR_MS / 1000)).toBeLessThan(5);
    }

    // Writes through it are refused (nothing stamped an hour ahead); through the others, acknowledged.
    for (const key of keys) {
      const response = await put(n3, key, `skewed ${key}`, 'one');
      expect(response.status, `write of ${key} through the skewed node`).toBe(503);
      const body = (await response.json()) as ErrorBody;
      expect(body.error.code).toBe('CLOCK_SKEW');
      expect(Math.abs((body.error['offsetMs'] as number) - HOUR_MS)).toBeLessThan(5_000);
    }
    expect((await del(n3, keys[7]!, 'one')).status).toBe(503);
    for (const key of keys) {
      const response = await put(n1, key, `after ${key}`);
      expect(response.status, `quorum write of ${key} through n1: ${await response.clone().text()}`).toBe(204);
      acknowledged.set(key, `after ${key}`);
    }
    expect((await del(n2, keys[0]!)).status).toBe(204);
    acknowledged.set(keys[0]!, undefined);
    // n3 missed those (its clock is too far off for the cluster key's 30 s window): the hints n1 keeps for it are
    // refused for their timestamps, and n1 says it is the clocks, not the key.
    const refusal = await n1.proc!.waitForLog((l) => l.level === 40 && JSON.stringify(l).includes('refused our request for clock skew, not for our key'));
    expect(JSON.stringify(refusal)).toMatch(hourly('its clock is ', ' ms ahead of ours'));

    // The clock is fixed: the node refuses to start on the high-water mark its skewed run left, and says what to do.
    await n3.stop();
    const guarded = n3.start();
    expect(await guarded.exitCode()).toBe(1);
    const fatal = guarded.logs().find((l) => l.level === 60);
    expect(fatal?.['code']).toBe('CLOCK_AHEAD');
    expect(fatal?.msg, fatal?.msg).toMatch(/^refusing to start: the clock high-water mark persisted in this store is (59|60)\.\d min ahead of the wall clock/);
    expect(fatal?.msg).toContain('or start with --accept-clock-ahead: the node then serves reads, replication and repair but coordinates no writes until that time');

    // Accepted: it serves reads, replication and repair, but coordinates no writes until its clock passes the mark.
    n3.start(['--accept-clock-ahead']);
    await until(
      async () => {
        const h = await health(n3.url);
        return h?.status === 503 && h.body.error?.['clockState'] === 'ahead' ? true : undefined;
      },
      () => `n3 did not start waiting out its clock: ${n3.describe()}`,
    );
    await n3.proc!.waitForLog((l) => l.msg.startsWith('started on a clock high-water mark'));
    expect((await put(n3, 'skew/refused', 'x', 'one')).status).toBe(503);
    await until(
      async () => ((await (await api(`${n1.url}/v1/cluster`)).json()) as { members: { id: string; state: string }[] }).members
        .find((m) => m.id === 'n3')?.state === 'alive' ? true : undefined,
      () => 'n1 does not see n3 alive again',
    );
    for (const node of [n1, n2]) expect((await health(node.url))?.status, `${node.id} health`).toBe(200);

    for (const node of cluster.nodes) {
      const result = await runCli(['repair', '--node', node.url]);
      expect(result.code, `hearsay repair on ${node.id}: ${result.stdout}${result.stderr}`).toBe(0);
      expect(result.stdout).toContain('repair: in sync');
    }

    // Nothing acknowledged lost, no acknowledged delete undone: on every replica, and through every node.
    for (const node of cluster.nodes) {
      const held = new Map((await localRecords(node, 'skew/')).map((r) => [r.key, r]));
      for (const [key, value] of acknowledged) {
        const record = held.get(key);
        if (value === undefined) expect(record?.tombstone, `${key} on ${node.id}`).toBe(true);
        else expect(record === undefined ? undefined : Buffer.from(record.value).toString(), `${key} on ${node.id}`).toBe(value);
        // Nothing stamped an hour ahead anywhere.
        expect(record!.version.ms, `${key} on ${node.id}`).toBeLessThan(Date.now() + 1000);
      }
      for (const [key, value] of acknowledged) expect(await get(node, key, 'all'), `${key} read through ${node.id}`).toBe(value);
    }
  }, 180_000);
});
