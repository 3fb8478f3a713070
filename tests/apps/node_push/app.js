// A small application holding a real node-postgres Pool that pushes its counts to poolwatch.
//
// Run by tests/common/push_apps.rs with NODE_PATH at the node_modules that
// scripts/install-test-deps.sh fills (pg, pinned). Arguments as --key value: dsn, url,
// application, instance, token, pool-name, max-size, every (seconds). Commands on stdin:
//
//   load N SECONDS   N clients each run SELECT pg_sleep(SECONDS) through the pool
//   quit             push "final": true and exit (printing `stopped`)
//
// Prints `ready` once the first push is answered, `poolwatch push failed: ...` when one is
// refused.
'use strict';

const { Pool } = require('pg');
const readline = require('node:readline');

function options(argv) {
  const o = { 'pool-name': 'default', 'max-size': '5', every: '1' };
  for (let i = 0; i + 1 < argv.length; i += 2) o[argv[i].replace(/^--/, '')] = argv[i + 1];
  return o;
}

// --- README example: start ---
// Posts node-postgres' pool counts to poolwatch every `everyMs` milliseconds.
function pushPoolStats(pool, { url, application, instance, token, name = 'default', everyMs = 5000 }) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const push = async () => {
    const stats = { name, capacity: pool.options.max, in_use: pool.totalCount - pool.idleCount,
                    idle: pool.idleCount, waiting: pool.waitingCount };
    const body = JSON.stringify({ application, instance, pools: [stats] });
    try {
      const res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(2000) });
      if (!res.ok) console.log('poolwatch push failed:', res.status, await res.text());
    } catch (e) {
      console.log('poolwatch push failed:', e.message);
    }
  };
  return setInterval(push, everyMs);
}
// --- README example: end ---

async function finalPush(o) {
  const headers = { 'Content-Type': 'application/json' };
  if (o.token) headers.Authorization = `Bearer ${o.token}`;
  const body = JSON.stringify({ application: o.application, instance: o.instance, final: true, pools: [] });
  return fetch(o.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(2000) });
}

async function main() {
  const o = options(process.argv.slice(2));
  const pool = new Pool({ connectionString: o.dsn, max: Number(o['max-size']) });
  pool.on('error', (e) => console.log('idle client error:', e.message));
  await pool.query('SELECT 1');
  const timer = pushPoolStats(pool, {
    url: o.url, application: o.application, instance: o.instance, token: o.token,
    name: o['pool-name'], everyMs: Number(o.every) * 1000,
  });
  console.log('ready');
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    const words = line.trim().split(/\s+/);
    if (words[0] === 'load') {
      const [n, seconds] = [Number(words[1]), Number(words[2])];
      for (let i = 0; i < n; i++) {
        pool.query('SELECT pg_sleep($1)', [seconds]).catch((e) => console.log('client failed:', e.message));
      }
      console.log('loaded', n);
    } else if (words[0] === 'quit') {
      break;
    }
  }
  clearInterval(timer);
  try {
    const res = await finalPush(o);
    if (!res.ok) console.log('final push failed:', res.status);
  } catch (e) {
    console.log('final push failed:', e.message);
  }
  console.log('stopped');
  process.exit(0);
}

main().catch((e) => {
  console.log('app failed:', e.message);
  process.exit(1);
});
