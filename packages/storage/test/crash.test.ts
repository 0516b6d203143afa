/**
 * kill -9 in the middle of concurrent writes: after reopening, data and
 * index agree (digests recomputed from scratch) and every write the child
 * reported as acknowledged is there (its key holds that version or a newer one).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { compareVersions, openStore, parseVersion } from '../src/index.ts';
import { checkIntegrity } from './integrity.ts';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../../..');
const writer = join(here, 'fixtures', 'crash-writer.ts');

interface Ack { op: string; key: string; version: string; tombstone: boolean }

/** Runs the writer until it has acknowledged `acksWanted` writes, then SIGKILLs it. */
function runAndKill(dir: string, round: number, acksWanted: number, deadlineMs: number): Promise<Ack[]> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', writer, dir, String(round)], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    const acks: Ack[] = [];
    let buffered = '';
    let stderr = '';
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, deadlineMs);
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line === 'ready') continue;
        acks.push(JSON.parse(line) as Ack);
      }
      if (!killed && acks.length >= acksWanted) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      // A partial last line was never acknowledged as a whole; ignore it.
      if (signal !== 'SIGKILL') reject(new Error(`writer exited by itself (code ${code}): ${stderr}`));
      else if (acks.length < 50) reject(new Error(`writer acknowledged only ${acks.length} writes before the deadline: ${stderr}`));
      else resolvePromise(acks);
    });
  });
}

describe('crash safety', () => {
  it('keeps data, index and acknowledged writes across kill -9', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearsay-crash-'));
    try {
      for (let round = 0; round < 2; round++) {
        const acks = await runAndKill(dir, round, 800 + round * 400, 20_000);
        const store = await openStore({ location: dir });
        try {
          expect(store.nodeId).toBe('crasher');
          expect(await checkIntegrity(store)).toEqual([]);
          const records = await store.getRecords(acks.map((a) => a.key));
          const lost = acks.filter((a, i) => {
            const r = records[i];
            return r === undefined || compareVersions(r.version, parseVersion(a.version)) < 0;
          });
          expect(lost).toEqual([]);
        } finally {
          await store.close();
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
