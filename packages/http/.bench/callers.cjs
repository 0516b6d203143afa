const fs = require('fs');
const [dir, name] = process.argv.slice(2);
const file = fs.readdirSync(dir).filter(f => f.endsWith('.cpuprofile')).map(f => dir + '/' + f)[0];
const p = JSON.parse(fs.readFileSync(file));
const parent = new Map(); for (const n of p.nodes) for (const c of n.children || []) parent.set(c, n.id);
const byId = new Map(p.nodes.map(n => [n.id, n]));
const counts = new Map(); for (const s of p.samples) counts.set(s, (counts.get(s) || 0) + 1);
const stacks = new Map();
for (const [id, c] of counts) { if (byId.get(id).callFrame.functionName !== name) continue;
  let s = []; let cur = parent.get(id); for (let d = 0; d < 6 && cur; d++) { const f = byId.get(cur).callFrame; s.push(`${f.functionName}@${f.url.split('/').slice(-1)[0]}:${f.lineNumber}`); cur = parent.get(cur); }
  const k = s.join(' < '); stacks.set(k, (stacks.get(k) || 0) + c); }
[...stacks].sort((a, b) => b[1] - a[1]).slice(0, 5).forEach(([k, c]) => console.log(c, k));
