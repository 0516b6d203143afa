#!/bin/bash
# CPU microseconds per request of the server process: stable under a loaded machine, unlike req/s.
cd /work/main/packages/http/.bench
MODE=$1; PORT=$2; DUR=${DUR:-5}
LOG=/tmp/hbench-cpu-$MODE.log
node --import tsx server.ts $MODE $PORT > $LOG 2>&1 &
PID=$!
for i in $(seq 1 50); do grep -q ready $LOG && break; sleep 0.2; done
for M in GET PUT; do
  # warm up
  node -e "
const ac = require('/work/main/node_modules/autocannon');
(async () => { const body = Buffer.alloc(100, 120); let i = 0;
const r = await ac({ url: 'http://127.0.0.1:$PORT', connections: 50, amount: 20000, requests: [{ method: '$M', setupRequest: (req) => ({ ...req, path: '/v1/kv/key' + (i++ % 10000), ...('$M' === 'PUT' ? { body } : {}) }) }] });
})();"
  kill -USR2 $PID; sleep 0.3; B=$(grep cpu $LOG | tail -1 | cut -d' ' -f2)
  N=$(node -e "
const ac = require('/work/main/node_modules/autocannon');
(async () => { const body = Buffer.alloc(100, 120); let i = 0;
const r = await ac({ url: 'http://127.0.0.1:$PORT', connections: 50, duration: $DUR, requests: [{ method: '$M', setupRequest: (req) => ({ ...req, path: '/v1/kv/key' + (i++ % 10000), ...('$M' === 'PUT' ? { body } : {}) }) }] });
console.log(r.requests.total + r.non2xx * 0);
})();")
  kill -USR2 $PID; sleep 0.3; A=$(grep cpu $LOG | tail -1 | cut -d' ' -f2)
  echo "$MODE $M requests=$N cpu_us_per_req=$(( (A - B) / N ))"
done
kill $PID
