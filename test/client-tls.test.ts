/**
 * `@hearsay/client` over HTTPS with `nodeFetch` (`@hearsay/client/node`):
 * the real app on node:https with a certificate of a test CA (openssl),
 * every kind of answer the client reads (bodies, 204, 304, HEAD, a streamed
 * repair, errors), a client certificate shown to a server that asks, and the
 * failures: a CA the client does not trust, a refused port, an abort.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { getRequestListener } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HearsayClient } from '@hearsay/client';
import { nodeFetch } from '@hearsay/client/node';
import { createApp, createToken, parseAuthFile } from '@hearsay/http';
import { createLocalService } from '@hearsay/service';
import { openStore, type Store } from '@hearsay/storage';
import { freeTcpPort } from './cluster-processes.ts';
import { makeCa, makeCertificate, type TestCa } from './support/tls.ts';
import { caught } from './support/caught.ts';

let dir: string;
let ca: TestCa;
let store: Store;
let server: Server;
let url: string;
/** Client certificates the server saw, by request path. */
const shown = new Map<string, string | undefined>();
const token = createToken({ scopes: ['admin'] });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hearsay-client-tls-'));
  ca = makeCa(dir);
  const serverCert = makeCertificate(ca, 'server');
  store = await openStore({ location: join(dir, 'store'), nodeId: 'tls-node' });
  const app = createApp({ service: createLocalService(store, { httpUrl: 'https://127.0.0.1' }), auth: parseAuthFile(token.line) });
  const listener = getRequestListener(app.fetch);
  server = createServer({ cert: await readFile(serverCert.certFile), key: await readFile(serverCert.keyFile), ca: await readFile(ca.caFile), requestCert: true, rejectUnauthorized: false }, (request, response) => {
    const socket = request.socket as TLSSocket;
    shown.set(request.url ?? '', socket.authorized ? socket.getPeerX509Certificate()?.subject : undefined);
    void listener(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await store.close();
  await rm(dir, { recursive: true, force: true });
});


describe('HearsayClient with nodeFetch over HTTPS', () => {
  it('reads every kind of answer through a CA it was given', async () => {
    const client = new HearsayClient({ baseUrl: url, token: token.token, fetch: nodeFetch({ ca: await readFile(ca.caFile) }) });
    const { etag } = await client.put('users/1', 'ada', { contentType: 'text/x-name' });
    const entry = await client.get('users/1');
    expect(entry).toMatchObject({ etag, contentType: 'text/x-name' });
    expect(entry?.text()).toBe('ada');
    expect(await client.get('users/1', { ifNoneMatch: etag })).toMatchObject({ notModified: true });
    expect(await client.head('users/1')).toMatchObject({ etag, size: 3 });
    expect(await client.get('missing')).toBeUndefined();
    expect((await client.list({ prefix: 'users/' })).items.map((i) => i.key)).toEqual(['users/1']);
    const lines = [];
    for await (const line of client.repair()) lines.push(line.type);
    expect(lines.at(-1)).toBe('summary');
    await client.delete('users/1');
    expect(await caught(client.put('users/1', 'x', { ifMatch: etag }))).toMatchObject({ code: 'PRECONDITION_FAILED', status: 412 });
    // No client certificate was given: the server saw none.
    expect(shown.get('/v1/kv/users/1')).toBeUndefined();
  });

  it('shows a client certificate to a server that asks for one', async () => {
    const clientCert = makeCertificate(ca, 'client-app');
    const client = new HearsayClient({
      baseUrl: url,
      token: token.token,
      fetch: nodeFetch({ ca: await readFile(ca.caFile), cert: await readFile(clientCert.certFile), key: await readFile(clientCert.keyFile) }),
    });
    await client.put('mtls', 'yes');
    expect(shown.get('/v1/kv/mtls')).toBe('CN=client-app');
  });

  it('fails with NETWORK_ERROR naming the cause: an untrusted certificate, a refused port', async () => {
    const untrusted = new HearsayClient({ baseUrl: url, fetch: nodeFetch() });
    const error = await caught(untrusted.health());
    expect(error.code).toBe('NETWORK_ERROR');
    expect(error.message).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY/);
    const port = await freeTcpPort();
    const refused = await caught(new HearsayClient({ baseUrl: `https://127.0.0.1:${port}`, fetch: nodeFetch({ keepAlive: false }) }).health());
    expect(refused).toMatchObject({ code: 'NETWORK_ERROR', message: expect.stringContaining('ECONNREFUSED') });
  });

  it('aborts with the caller signal, and times out', async () => {
    const client = new HearsayClient({ baseUrl: url, token: token.token, fetch: nodeFetch({ ca: await readFile(ca.caFile) }) });
    const controller = new AbortController();
    controller.abort();
    expect(await caught(client.get('k', { signal: controller.signal }))).toMatchObject({ code: 'ABORTED' });
    // A server that never answers: the client's timeout ends the wait.
    const silent = createServer({ cert: await readFile(join(dir, 'server.pem')), key: await readFile(join(dir, 'server.key')) }, () => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const slow = new HearsayClient({ baseUrl: `https://127.0.0.1:${(silent.address() as AddressInfo).port}`, fetch: nodeFetch({ ca: await readFile(ca.caFile) }), timeoutMs: 300 });
      expect(await caught(slow.health())).toMatchObject({ code: 'TIMEOUT' });
    } finally {
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});
