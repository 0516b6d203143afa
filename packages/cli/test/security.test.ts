/**
 * The CLI's side of client tokens and private files, in-process: `hearsay
 * token create | list | revoke` and `hearsay key generate` and the files
 * they write; secret files refused when others may read them; the auth file
 * reloaded on change and on SIGHUP, keeping the tokens in force when the new
 * file is bad; and the client commands with `--token` / `HEARSAY_TOKEN`
 * against a node with an auth file. Real processes are in
 * /test/security-processes.test.ts.
 */
import { chmod, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createToken, parseAuthFile } from '@hearsay/http';
import { AuthFile } from '../src/auth-file.ts';
import { parseKeyFile, readKeyFile } from '../src/cluster-key.ts';
import { readPrivateFile, refuseOpenMode } from '../src/private-files.ts';
import { Readable } from 'node:stream';
import { runCli, startNode, type CliIo, type RunningNode } from '../src/index.ts';

/** Runs the CLI in-process and captures what it writes. */
async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: { write: (chunk) => ((stdout += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString()), true) },
    stderr: { write: (chunk) => ((stderr += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString()), true) },
    stdin: Readable.from([]),
  };
  const code = await runCli(argv, io);
  return { code, stdout, stderr };
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hearsay-security-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const modeOf = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;
const DEADLINE_MS = 10_000;

/** Polls `probe` until it is true, or fails at the deadline (a file watcher answers in milliseconds). */
async function until(probe: () => boolean, what: string): Promise<void> {
  const end = Date.now() + DEADLINE_MS;
  while (!probe()) {
    if (Date.now() > end) throw new Error(`not within ${DEADLINE_MS} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('hearsay token', () => {
  it('create prints the token once and the auth line that admits it', async () => {
    const made = await run(['token', 'create', '--scope', 'read,write', '--prefix', 'users/', '--prefix', 'a b', '--id', 'app']);
    expect(made.code, made.stderr).toBe(0);
    const [tokenLine, authLine] = made.stdout.trimEnd().split('\n') as [string, string];
    const token = tokenLine.replace(/^token: +/, '');
    const line = authLine.replace(/^auth line: +/, '');
    expect(token).toMatch(/^hs1\.app\.[A-Za-z0-9_-]{43}$/);
    expect(line).toMatch(/^id=app scopes=read,write prefixes=users\/,a%20b sha256=[0-9a-f]{64}$/);
    expect(parseAuthFile(line).verify(token)?.prefixes).toEqual(['users/', 'a b']);
    expect(made.stderr).toContain('shown once');
  });

  it('create --json, and --scope repeated', async () => {
    const made = await run(['token', 'create', '--scope', 'read', '--scope', 'metrics', '--json']);
    const parsed = JSON.parse(made.stdout) as { id: string; token: string; line: string };
    expect(parsed.line).toContain(`id=${parsed.id} scopes=read,metrics `);
    expect(parseAuthFile(parsed.line).verify(parsed.token)).toBeDefined();
  });

  it('refuses what cannot be a token (exit 2)', async () => {
    expect((await run(['token', 'create', '--scope', 'root'])).code).toBe(2);
    expect((await run(['token', 'create'])).code).toBe(2);
    const admin = await run(['token', 'create', '--scope', 'admin', '--prefix', 'x/']);
    expect(admin.code).toBe(2);
    expect(admin.stderr).toContain('takes no prefixes');
    expect((await run(['token', 'create', '--scope', 'read', '--id', 'no.dots'])).code).toBe(2);
  });

  it('--auth-file appends (creating the file 0600), list shows ids never secrets, revoke removes', async () => {
    const file = join(dir, 'tokens');
    const first = await run(['token', 'create', '--scope', 'read', '--id', 'reader', '--auth-file', file]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^hs1\.reader\.[A-Za-z0-9_-]{43}\n$/);
    expect(await modeOf(file)).toBe(0o600);
    process.env['HEARSAY_AUTH_FILE'] = file;
    try {
      const second = await run(['token', 'create', '--scope', 'write', '--prefix', 'users/', '--id', 'writer']);
      expect(second.code, second.stderr).toBe(0);
      const duplicate = await run(['token', 'create', '--scope', 'write', '--id', 'writer']);
      expect(duplicate.code).toBe(2);
      expect(duplicate.stderr).toContain('listed twice');
      const list = await run(['token', 'list']);
      expect(list.stdout).toMatch(/^ID +SCOPES +PREFIXES\nreader +read +\(every key\)\nwriter +write +users\/\n$/);
      const text = await readFile(file, 'utf8');
      expect(text).not.toContain(first.stdout.trim().split('.')[2]);
      const table = parseAuthFile(text);
      expect(table.verify(first.stdout.trim())?.id).toBe('reader');
      expect(table.verify(second.stdout.trim())?.id).toBe('writer');

      const revoke = await run(['token', 'revoke', 'reader']);
      expect(revoke.code, revoke.stderr).toBe(0);
      expect(parseAuthFile(await readFile(file, 'utf8')).ids()).toEqual(['writer']);
      expect(await modeOf(file)).toBe(0o600);
      const again = await run(['token', 'revoke', 'reader']);
      expect(again.code).toBe(1);
      expect(again.stderr).toContain('[TOKEN_NOT_FOUND]');
    } finally {
      delete process.env['HEARSAY_AUTH_FILE'];
    }
  });

  it('refuses to add to an auth file others can read (exit 2), naming the fix', async () => {
    const file = join(dir, 'open-tokens');
    await writeFile(file, '', { mode: 0o644 });
    await chmod(file, 0o644);
    const made = await run(['token', 'create', '--scope', 'read', '--auth-file', file]);
    expect(made.code).toBe(2);
    expect(made.stderr).toContain(`chmod 600 ${file}`);
    expect(made.stderr).toContain('[FILE_TOO_OPEN]');
  });
});

describe('hearsay key generate', () => {
  it('prints a random 256-bit key, or writes a new 0600 file and never overwrites one', async () => {
    const a = await run(['key', 'generate']);
    const b = await run(['key', 'generate']);
    expect(a.stdout).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
    expect(Buffer.from(a.stdout.trim(), 'base64')).toHaveLength(32);
    expect(a.stdout).not.toBe(b.stdout);
    const file = join(dir, 'cluster.key');
    const written = await run(['key', 'generate', '--out', file]);
    expect(written).toMatchObject({ code: 0, stdout: '' });
    expect(written.stderr).toContain(`--cluster-key-file ${file}`);
    expect(await modeOf(file)).toBe(0o600);
    const key = await readFile(file, 'utf8');
    expect(await readKeyFile(file)).toEqual([key.trim()]);
    const again = await run(['key', 'generate', '--out', file]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('it exists');
    expect(await readFile(file, 'utf8')).toBe(key);
  });
});

describe('secret files', () => {
  it.each([
    [0o600, true],
    [0o400, true],
    [0o640, false],
    [0o604, false],
    [0o644, false],
    [0o660, false],
    [0o620, false],
  ])('mode %s readable: %s', async (mode, ok) => {
    const file = join(dir, `secret-${mode.toString(8)}`);
    await writeFile(file, 'key\n');
    await chmod(file, mode);
    const read = readPrivateFile(file, 'test secret', 1024);
    if (ok) await expect(read).resolves.toBe('key\n');
    else await expect(read).rejects.toMatchObject({ code: 'FILE_TOO_OPEN', exitCode: 2 });
  });

  it.each([
    // [file mode, file owner, this process, accepted]
    [0o600, 1000, 1000, true],
    [0o640, 1000, 1000, false],
    [0o600, 1001, 1000, false],
    [0o640, 0, 1000, true],
    [0o660, 0, 1000, false],
    [0o644, 0, 1000, false],
    [0o640, 0, 0, false],
    [0o600, 0, 0, true],
  ])('mode %s owned by uid %i, read by uid %i: accepted %s', (fileMode, owner, self, ok) => {
    const check = (): void => refuseOpenMode('/secret', 'test secret', fileMode, owner, self);
    if (ok) expect(check).not.toThrow();
    else expect(check).toThrow(expect.objectContaining({ code: 'FILE_TOO_OPEN' }));
  });

  it('refuses a missing file, a dir and an oversized file', async () => {
    await expect(readPrivateFile(join(dir, 'none'), 'x', 10)).rejects.toMatchObject({ code: 'FILE_UNREADABLE', exitCode: 2 });
    await expect(readPrivateFile(dir, 'x', 10)).rejects.toMatchObject({ exitCode: 2 });
    const big = join(dir, 'big');
    await writeFile(big, 'x'.repeat(11), { mode: 0o600 });
    await expect(readPrivateFile(big, 'x', 10)).rejects.toMatchObject({ code: 'FILE_UNREADABLE' });
  });

  it('a cluster key file: one key a line, comments allowed, not empty', () => {
    expect(parseKeyFile('# primary\nkey-one\n\n  key-two  \n', 'f')).toEqual(['key-one', 'key-two']);
    expect(() => parseKeyFile('# nothing\n', 'f')).toThrow(expect.objectContaining({ code: 'CLUSTER_KEY_INVALID', message: expect.stringContaining('hearsay key generate') }));
    expect(() => parseKeyFile('has space\n', 'f')).toThrow(expect.objectContaining({ code: 'CLUSTER_KEY_INVALID' }));
  });
});

describe('AuthFile', () => {
  const logs: Array<{ level: number; msg: string }> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line) as { level: number; msg: string }) });
  let file: string;
  let auth: AuthFile | undefined;

  afterEach(() => {
    auth?.close();
    auth = undefined;
  });

  it('reloads when the file is rewritten or replaced, and on SIGHUP; a bad file leaves the tokens in force', async () => {
    file = join(dir, 'auth-reload');
    const one = createToken({ scopes: ['read'], id: 'one' });
    const two = createToken({ scopes: ['write'], id: 'two' });
    const three = createToken({ scopes: ['admin'], id: 'three' });
    await writeFile(file, `${one.line}\n`, { mode: 0o600 });
    auth = await AuthFile.open(file, logger);
    expect(auth.verify(one.token)?.id).toBe('one');
    expect(auth.verify(two.token)).toBeUndefined();

    // Rewritten in place (an editor's save).
    await writeFile(file, `${two.line}\n`);
    await until(() => auth!.verify(two.token) !== undefined, 'the rewritten file is loaded');
    expect(auth.verify(one.token)).toBeUndefined();
    expect(logs.at(-1)).toMatchObject({ msg: expect.stringContaining('auth file reloaded (the file changed): 1 tokens'), added: ['two'], removed: ['one'] });

    // Broken: logged, and the tokens before stay valid.
    await writeFile(file, 'id=oops\n');
    await until(() => logs.some((l) => l.level === 50 && l.msg.includes('auth file not reloaded')), 'the bad file is reported');
    expect(auth.verify(two.token)?.id).toBe('two');

    // Replaced by rename (config tools), then SIGHUP while nothing changed.
    const next = join(dir, 'auth-reload.next');
    await writeFile(next, `${two.line}\n${three.line}\n`, { mode: 0o600 });
    await rename(next, file);
    await until(() => auth!.verify(three.token) !== undefined, 'the renamed file is loaded');
    const before = logs.length;
    process.kill(process.pid, 'SIGHUP');
    await until(() => logs.slice(before).some((l) => l.msg.includes('auth file reloaded (SIGHUP): 2 tokens')), 'SIGHUP reloads');

    // Made readable by others: refused on reload like at start.
    await chmod(file, 0o644);
    process.kill(process.pid, 'SIGHUP');
    await until(() => logs.some((l) => l.level === 50 && l.msg.includes('chmod 600')), 'the open file is refused');
    expect(auth.verify(three.token)?.id).toBe('three');
  });

  it('refuses at open a file others can read, or one that does not parse', async () => {
    const open = join(dir, 'auth-open');
    await writeFile(open, '');
    await chmod(open, 0o640);
    await expect(AuthFile.open(open, logger)).rejects.toMatchObject({ code: 'FILE_TOO_OPEN', exitCode: 2 });
    const bad = join(dir, 'auth-bad');
    await writeFile(bad, 'id=a scopes=read sha256=zz\n', { mode: 0o600 });
    await expect(AuthFile.open(bad, logger)).rejects.toMatchObject({ code: 'AUTH_FILE_INVALID', exitCode: 2, message: expect.stringContaining('line 1') });
  });
});

describe('client commands with a token', () => {
  let node: RunningNode;
  let auth: AuthFile;
  const admin = createToken({ scopes: ['admin'], id: 'ops' });
  const reader = createToken({ scopes: ['read'], id: 'reader' });

  beforeAll(async () => {
    const file = join(dir, 'node-tokens');
    await writeFile(file, `${admin.line}\n${reader.line}\n`, { mode: 0o600 });
    auth = await AuthFile.open(file, pino({ level: 'silent' }));
    node = await startNode({
      dataDir: join(dir, 'node'),
      host: '127.0.0.1',
      httpPort: 0,
      gossipPort: 0,
      seeds: [],
      replicationFactor: 3,
      logger: pino({ level: 'silent' }),
      auth,
    });
  });
  afterAll(async () => {
    await node.stop();
    auth.close();
  });

  it('--token and HEARSAY_TOKEN reach the node; missing or weak tokens fail with a hint', async () => {
    const put = await run(['put', 'k', 'v', '--node', node.httpUrl, '--token', admin.token]);
    expect(put.code, put.stderr).toBe(0);
    const none = await run(['get', 'k', '--node', node.httpUrl]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('[UNAUTHENTICATED]');
    expect(none.stderr).toContain('HEARSAY_TOKEN');
    process.env['HEARSAY_TOKEN'] = reader.token;
    try {
      const get = await run(['get', 'k', '--node', node.httpUrl]);
      expect(get).toMatchObject({ code: 0, stdout: 'v' });
      const status = await run(['status', '--node', node.httpUrl]);
      expect(status.code, status.stderr).toBe(0);
      const del = await run(['del', 'k', '--node', node.httpUrl]);
      expect(del.code).toBe(1);
      expect(del.stderr).toContain('[FORBIDDEN]');
      const repair = await run(['repair', '--node', node.httpUrl]);
      expect(repair.code).toBe(1);
      expect(repair.stderr).toContain('[FORBIDDEN]');
      expect((await run(['repair', '--node', node.httpUrl, '--token', admin.token])).code).toBe(0);
    } finally {
      delete process.env['HEARSAY_TOKEN'];
    }
    const bad = await run(['get', 'k', '--node', node.httpUrl, '--token', 'not a token']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('[INVALID_ARGUMENT]');
  });

  it('the node says in /v1/health that it checks tokens', async () => {
    const health = (await (await fetch(`${node.httpUrl}/v1/health`)).json()) as Record<string, unknown>;
    expect(health['security']).toEqual({ clientAuth: 'tokens', tls: false, internode: 'closed' });
  });
});
