/**
 * Embedding @hearsay/storage alone: open a directory, put, get, delete, scan
 * a prefix, apply a record replicated from another node, close.
 * Run from the repo root: `pnpm example` (data goes to ./data/example).
 */
import { openStore, versionToString } from '@hearsay/storage';

const location = './data/example';
const store = await openStore({ location });
console.log(`opened ${location} as node ${store.nodeId} (${2 ** store.bucketBits} digest buckets)`);

const put = await store.put('users/1', JSON.stringify({ name: 'Ada' }), { contentType: 'application/json' });
console.log(`put users/1 -> version ${versionToString(put.version)}`);
await store.put('users/3', 'Cy');

const ada = await store.get('users/1');
console.log(`get users/1 -> ${Buffer.from(ada!.value).toString()} (${ada!.contentType})`);

const del = await store.delete('users/1');
console.log(`delete users/1 -> tombstone ${versionToString(del.version)}; get now gives ${String(await store.get('users/1'))}`);

// A record made on another node, as repair or replication would deliver it.
const replicated = { key: 'users/2', value: Buffer.from('Bo'), version: { ms: Date.now(), counter: 0, node: 'node-b' }, tombstone: false };
console.log(`apply users/2 from node-b -> changed: ${await store.apply(replicated)}; again -> changed: ${await store.apply(replicated)}`);

const page = await store.scan({ prefix: 'users/' });
console.log(`scan users/ -> ${page.records.map((r) => `${r.key}=${Buffer.from(r.value).toString()}`).join(', ')}`);
console.log(`stats: ${JSON.stringify(store.stats())}`);
await store.close();
console.log('closed');
