// A small Node application with a real node-postgres pool (pg.Pool) against PostgreSQL,
// instrumented by @opentelemetry/instrumentation-pg and exported through
// @opentelemetry/exporter-prometheus, in OpenTelemetry's current database client metric names
// (db.client.connection.count{db.client.connection.state}, .max, .pending_requests; label
// db_client_connection_pool_name = "host:port/database"), as poolwatch's `otel` preset reads
// them.
//
// What the instrumentation emits, and when: the count and pending requests are recomputed
// from pool.totalCount/idleCount/waitingCount on the pool's connect, acquire, release and
// remove events only; a client that starts waiting, or gives up waiting
// (connectionTimeoutMillis), fires none. It has no timeouts instrument. A pool's series appear
// only after its first pool.connect().
//
// Installed by scripts/install-test-deps.sh (npm ci into the cache) and run by
// tests/common/real_apps.rs with NODE_PATH there; prints `listening on PORT` once it serves.
//
//   GET  /metrics       the exposition
//   POST /hold?n=N      N "requests" each take a connection (pool.connect()) and keep it until
//                       /release; beyond the pool's size they wait, past --timeout they give up
//   POST /release       every held connection goes back to the pool
//   GET  /stats         the pool's own counts now: {totalCount, idleCount, waitingCount}
'use strict';

const http = require('http');
const { MeterProvider } = require('@opentelemetry/sdk-metrics');
const { PrometheusExporter } = require('@opentelemetry/exporter-prometheus');
const { registerInstrumentations } = require('@opentelemetry/instrumentation');
const { PgInstrumentation } = require('@opentelemetry/instrumentation-pg');

function args() {
  const out = { port: 0, size: 5, timeout: 2.0, name: 'checkout', dsn: '' };
  const argv = process.argv.slice(2);
  for (let i = 0; i + 1 < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in out)) throw new Error(`unknown option ${argv[i]}`);
    out[key] = typeof out[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  if (!out.dsn) throw new Error('--dsn is required');
  return out;
}

const opts = args();
const exporter = new PrometheusExporter({ preventServerStart: true });
const meterProvider = new MeterProvider({ readers: [exporter] });
registerInstrumentations({ meterProvider, instrumentations: [new PgInstrumentation()] });
// After the instrumentation is registered, so that it patches the module it loads.
const pg = require('pg');

// --name is not used: instrumentation-pg names the pool "host:port/database" from the pool's
// options (with a connectionString alone it says "unknown_host:unknown_port/unknown_database").
const dsn = new URL(opts.dsn);
const pool = new pg.Pool({
  host: dsn.hostname,
  port: Number(dsn.port || 5432),
  user: decodeURIComponent(dsn.username),
  password: decodeURIComponent(dsn.password) || undefined,
  database: dsn.pathname.replace(/^\//, '') || 'postgres',
  max: opts.size,
  connectionTimeoutMillis: Math.round(opts.timeout * 1000),
});

let release = null;
let released = Promise.resolve();
function newRelease() {
  released = new Promise((resolve) => { release = resolve; });
}
newRelease();

async function holdOne(until) {
  let client;
  try {
    client = await pool.connect();
  } catch (e) {
    return; // timed out waiting
  }
  try {
    await client.query('SELECT 1');
    await until;
  } finally {
    client.release();
  }
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  const reply = (status, body) => {
    res.writeHead(status, { 'Content-Type': 'text/plain' });
    res.end(body);
  };
  if (req.method === 'GET' && url.pathname === '/metrics') {
    exporter.getMetricsRequestHandler(req, res);
  } else if (req.method === 'GET' && url.pathname === '/stats') {
    const { totalCount, idleCount, waitingCount } = pool;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ totalCount, idleCount, waitingCount }));
  } else if (req.method === 'POST' && url.pathname === '/hold') {
    const n = Number(url.searchParams.get('n') || '1');
    for (let i = 0; i < n; i++) holdOne(released).catch(() => {});
    reply(200, 'ok\n');
  } else if (req.method === 'POST' && url.pathname === '/release') {
    release();
    newRelease();
    reply(200, 'ok\n');
  } else {
    reply(404, 'not found\n');
  }
});

// The instrumentation registers a pool's instruments on its first pool.connect(): until then
// the exposition has no pool series at all. A query at start, as a service's readiness check
// makes, opens one connection and registers them.
pool.query('SELECT 1').then(() => {
  server.listen(opts.port, '127.0.0.1', () => {
    console.log(`listening on ${server.address().port}`);
  });
}, (e) => {
  console.error(`the first query failed: ${e.message}`);
  process.exit(1);
});
