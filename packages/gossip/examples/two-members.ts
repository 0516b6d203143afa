// Two gossip members on loopback: they join, share a state key, then one
// leaves. Run: npx tsx packages/gossip/examples/two-members.ts
import { generateKey, Keyring, startGossip } from '@hearsay/gossip';

const key = generateKey();
const fast = { probeIntervalMs: 200, probeTimeoutMs: 100, gossipIntervalMs: 50 };
const a = await startGossip({ id: 'a', host: '127.0.0.1', port: 0, label: 'example', keyring: new Keyring([key]), config: fast });
const b = await startGossip({ id: 'b', host: '127.0.0.1', port: 0, seeds: [a.localAddress], label: 'example', keyring: new Keyring([key]), config: fast });

a.on('event', (e) => console.log(`a sees ${e.member.id}: ${e.type}`));
b.setLocalState('http', 'http://127.0.0.1:7001');

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

await until(() => a.member('b')?.state['http'] !== undefined);
console.log(`a knows b's http address: ${a.member('b')?.state['http']}`);

await b.stop(); // graceful: a sees b as left
await until(() => a.member('b')?.status === 'left');
console.log(`b is ${a.member('b')?.status} at a; a dropped ${a.stats().droppedTotal} bad inputs`);
await a.stop();
