/**
 * What the app itself costs per request, apart from storage and process
 * wiring: one child process serves three @hono/node-server servers — a bare
 * Hono route (the baseline of bench/http), `createApp` over an in-memory
 * fake service (the app's own cost), and `createApp` over a local service on
 * memory-level (plus storage) — while this process loads them in turn with
 * autocannon (50 connections, 100-byte values, 10,000 keys).
 *
 * Figures are the child's CPU time per request (from /proc), since req/s on
 * the shared 2-core machine swings with other load; medians of alternating
 * rounds.
 *
 *   pnpm bench:http-app [--rounds 5] [--duration-s 2]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { serve } from '@hono/node-server';
import autocannon from 'autocannon';
import { Hono } from 'hono';
import { MemoryLevel } from 'memory-level';
import { openStore, type LevelLike, type StoredRecord } from '@hearsay/storage';
import { createApp } from '@hearsay/http';
import { createLocalService, type KvService } from '@hearsay/service';

const KEYS = 10_000;
const VALUE_BYTES = 100;

type Target = 'bare' | 'fake' | 'store';
const TARGETS: readonly Target[] = ['bare', 'fake', 'store'];
const LABELS: Record<Target, string> = {
  bare: 'bare Hono route',
  fake: 'createApp + fake service',
  store: 'createApp + local service (memory-level)',
};

async function serveAll(): Promise<void> {
  const value = new Uint8Array(VALUE_BYTES).fill(0x61);
  const bare = new Hono();
  bare.get('/v1/kv/*', (c) => c.body(value, 200, { 'content-type': 'application/octet-stream', etag: '"1.0.bare"' }));
  bare.put('/v1/kv/*', async (c) => {
    await c.req.arrayBuffer();
    return c.body(null, 204, { etag: '"1.0.bare"' });
  });

  const store = await openStore({ db: new MemoryLevel() as unknown as LevelLike, nodeId: 'bench' });
  await store.batch(Array.from({ length: KEYS }, (_, i) => ({ type: 'put' as const, key: `key${i}`, value })));
  const records = new Map<string, StoredRecord>();
  for (let i = 0; i < KEYS; i++) records.set(`key${i}`, (await store.get(`key${i}`))!);
  let ms = Date.now();
  const fake: KvService = {
    get: async (key) => records.get(key),
    put: async (key, bytes) => ({ key, value: bytes, version: { ms: ms++, counter: 0, node: 'fake' }, tombstone: false }),
    delete: async (key) => ({ key, value: new Uint8Array(0), version: { ms: ms++, counter: 0, node: 'fake' }, tombstone: true }),
    list: async () => ({ items: [], next: null }),
    cluster: async () => ({ self: 'fake', members: [] }),
    health: async () => ({ ok: true }),
    async *repair() {},
  };
  const fetches: Record<Target, (request: Request) => Response | Promise<Response>> = {
    bare: bare.fetch,
    fake: createApp({ service: fake }).fetch,
    store: createApp({ service: createLocalService(store) }).fetch,
  };
  const ports: Partial<Record<Target, number>> = {};
  await Promise.all(
    TARGETS.map(
      (target) =>
        new Promise<void>((resolve) => {
          serve({ fetch: fetches[target], hostname: '127.0.0.1', port: 0 }, (info) => {
            ports[target] = info.port;
            resolve();
          });
        }),
    ),
  );
  process.stdout.write(`${JSON.stringify({ ports })}\n`);
  process.once('SIGTERM', () => process.exit(0));
}

/** User + system CPU microseconds of a process, from /proc (clock ticks of 10 ms). */
function cpuUs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function drive(): Promise<void> {
  const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, 'duration-s': { type: 'string', default: '2' } } });
  const rounds = Number(args.rounds);
  const durationS = Number(args['duration-s']);

  const child = spawn(process.execPath, ['--conditions=@hearsay/source', '--import', 'tsx', new URL(import.meta.url).pathname, '--serve'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ports = await new Promise<Record<Target, number>>((resolve, reject) => {
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const line = output.split('\n').find((text) => text.startsWith('{"ports"'));
      if (line !== undefined) resolve((JSON.parse(line) as { ports: Record<Target, number> }).ports);
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${output}`)));
  });

  const body = Buffer.alloc(VALUE_BYTES, 0x62);
  const results = new Map<string, { cpu: number[]; rps: number[] }>();
  try {
    for (const op of ['GET', 'PUT'] as const) {
      for (let round = 0; round < rounds; round++) {
        for (const target of round % 2 === 0 ? TARGETS : [...TARGETS].reverse()) {
          let i = 0;
          const before = cpuUs(child.pid!);
          const result = await autocannon({
            url: `http://127.0.0.1:${ports[target]}`,
            connections: 50,
            duration: durationS,
            requests: [{ setupRequest: (request) => ({ ...request, method: op, path: `/v1/kv/key${i++ % KEYS}`, ...(op === 'PUT' ? { body } : {}) }) }],
          });
          const cpu = (cpuUs(child.pid!) - before) / Math.max(1, result.requests.total);
          if (result.non2xx > 0) throw new Error(`${target} ${op}: ${result.non2xx} non-2xx answers`);
          const entry = results.get(`${op} ${target}`) ?? { cpu: [], rps: [] };
          entry.cpu.push(cpu);
          entry.rps.push(result.requests.average);
          results.set(`${op} ${target}`, entry);
        }
      }
    }
  } finally {
    child.kill('SIGTERM');
  }

  console.log(`| op | server | CPU µs/request (median of ${rounds}) | bare ÷ this | req/s (median, noisy) |`);
  console.log('| --- | --- | ---: | ---: | ---: |');
  for (const op of ['GET', 'PUT']) {
    const bareCpu = median(results.get(`${op} bare`)!.cpu);
    for (const target of TARGETS) {
      const entry = results.get(`${op} ${target}`)!;
      const cpu = median(entry.cpu);
      console.log(`| ${op} | ${LABELS[target]} | ${cpu.toFixed(1)} | ${(bareCpu / cpu).toFixed(2)}× | ${Math.round(median(entry.rps))} |`);
    }
  }
}

if (process.argv.includes('--serve')) await serveAll();
else await drive();
