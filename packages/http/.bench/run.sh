#!/bin/bash
# usage: run.sh mode port
cd /work/main/packages/http/.bench
node --import tsx server.ts $1 $2 > /tmp/hbench-$1.log 2>&1 &
PID=$!
for i in $(seq 1 50); do grep -q ready /tmp/hbench-$1.log && break; sleep 0.2; done
DUR=${DUR:-8}
node -e "
const ac = require('/work/main/node_modules/autocannon');
(async () => {
  const body = Buffer.alloc(100, 120);
  for (const m of ['GET','PUT']) {
    let i = 0;
    const r = await ac({ url: 'http://127.0.0.1:$2', connections: 50, duration: $DUR, requests: [{ method: m, setupRequest: (req) => ({ ...req, path: '/v1/kv/key' + (i++ % 10000), ...(m === 'PUT' ? { body } : {}) }) }] });
    console.log('$1', m, Math.round(r.requests.average), 'req/s p50', r.latency.p50, 'p99', r.latency.p99, 'non2xx', r.non2xx, 'errors', r.errors);
  }
})();
"
kill $PID
