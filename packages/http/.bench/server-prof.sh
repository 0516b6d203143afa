#!/bin/bash
cd /work/main/packages/http/.bench
rm -rf prof-srv; node --import tsx --cpu-prof --cpu-prof-dir=prof-srv server.ts ${1:-app} 7110 > /tmp/hbench-prof.log 2>&1 &
PID=$!
for i in $(seq 1 50); do grep -q ready /tmp/hbench-prof.log && break; sleep 0.2; done
node -e "
const ac = require('/work/main/node_modules/autocannon');
(async () => {
  const body = Buffer.alloc(100, 120);
  const m = '$2';
  let i = 0;
  const r = await ac({ url: 'http://127.0.0.1:7110', connections: 50, duration: 6, requests: [{ method: m, setupRequest: (req) => ({ ...req, path: '/v1/kv/key' + (i++ % 10000), ...(m === 'PUT' ? { body } : {}) }) }] });
  console.log(m, Math.round(r.requests.average), 'req/s');
})();
"
kill -INT $PID; wait $PID
