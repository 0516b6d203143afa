const fs = require('fs');
const dir = process.argv[2];
const file = fs.readdirSync(dir).filter(f => f.endsWith('.cpuprofile')).map(f => dir + '/' + f)[0];
const p = JSON.parse(fs.readFileSync(file));
const byId = new Map(p.nodes.map(n => [n.id, n]));
const counts = new Map();
for (const s of p.samples) counts.set(s, (counts.get(s) || 0) + 1);
const cat = new Map(); let total = 0;
for (const [id, c] of counts) {
  const u = byId.get(id).callFrame.url; const f = byId.get(id).callFrame.functionName;
  let k = 'node-internal/native';
  if (u.includes('packages/http/src')) k = 'http/src'; else if (u.includes('packages/storage')) k = 'storage'; else if (u.includes('hono/dist')) k = 'hono'; else if (u.includes('node-server')) k = 'node-server'; else if (u.includes('prom-client')) k = 'prom-client'; else if (u.includes('level') || u.includes('rbtree') || u.includes('msgpackr')) k = 'level/msgpackr'; else if (f === '(idle)') k = 'idle'; else if (f === '(garbage collector)') k = 'gc'; else if (u.includes('esm/') || u.includes('cjs/') || u.includes('tsx')) k = 'loader';
  cat.set(k, (cat.get(k) || 0) + c); total += c;
}
[...cat].sort((a, b) => b[1] - a[1]).forEach(([k, c]) => console.log((100 * c / total).toFixed(1).padStart(5), k));
