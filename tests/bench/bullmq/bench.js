// bench.js — the peer side of tests/bench/bench_queue.py: BullMQ (npm
// bullmq + ioredis, versions pinned in package.json) on the same Redis, the
// same machine, in the same run as streamscale. Each mode prints one JSON
// object on stdout; bench_queue.py starts it, reads it and prints the ratios.
//
//   node bench.js fill --port P --n N [--payload FILE]
//       addBulk N no-op jobs, 1000 per call (timed: the bulk enqueue rate).
//   node bench.js consumer --port P --concurrency C
//       One Worker with `concurrency` C (created with autorun off): prints
//       "ready" once connected, starts on a "go" line on stdin, and on
//       "stop" closes and prints its CPU time since "go". bench_queue.py
//       starts one (concurrency 1, 8, 50) or several (N processes × 1),
//       counts completions in Redis and reads first processedOn → last
//       finishedOn back from Redis (the same definition as streamscale's
//       started_ms → finished_ms).
//   node bench.js enqueue --port P --n N [--payload FILE]
//       queue.add one at a time (one round trip each), queue.add with 64 in
//       flight, and addBulk in chunks of 1000: jobs/s for each.
//   node bench.js latency --port P --n N --rate R [--payload FILE]
//       One job every 1/R s to an idle Worker (concurrency 1, in this
//       process, own connections): add→processor start on this process's
//       clock (µs), and processedOn − timestamp (ms, BullMQ's own records).
//
// Jobs carry the same payload as streamscale's (the canonical spec JSON
// stored in the job hash) when --payload names a file holding it.
'use strict';
const fs = require('fs');
const { Queue, Worker } = require('bullmq');
const IORedis = require('ioredis');

const QUEUE = 'bench';

function args() {
  const a = { mode: process.argv[2], port: 6379, n: 1000, concurrency: 1, rate: 20 };
  for (let i = 3; i < process.argv.length; i += 2) {
    const k = process.argv[i].replace(/^--/, ''), v = process.argv[i + 1];
    a[k] = /^[0-9.]+$/.test(v) ? Number(v) : v;
  }
  return a;
}

function conn(a) {
  // BullMQ requires maxRetriesPerRequest: null on a Worker's connection.
  return new IORedis({ host: '127.0.0.1', port: a.port, maxRetriesPerRequest: null });
}

let payloadText = null;
function payload(a, i) {
  if (payloadText === null) {
    payloadText = a.payload ? fs.readFileSync(a.payload, 'utf8') : '{"source":"file:///bench/queue.mp4"}';
  }
  const base = JSON.parse(payloadText);
  base.metadata = Object.assign({}, base.metadata || {}, { bench: 'bullmq', n: i, sleep_ms: 0 });
  return base;
}

async function addBulk(queue, a, n, offset) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i += 1000) {
    const batch = [];
    for (let k = i; k < Math.min(n, i + 1000); k++) batch.push({ name: 'noop', data: payload(a, offset + k) });
    await queue.addBulk(batch);
  }
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function fill(a) {
  const qc = conn(a);
  const queue = new Queue(QUEUE, { connection: qc });
  await queue.waitUntilReady();
  const secs = await addBulk(queue, a, a.n, 0);
  await queue.close();
  qc.disconnect();
  console.log(JSON.stringify({ mode: 'fill', n: a.n, seconds: secs, per_s: a.n / secs }));
}

async function consumer(a) {
  const wc = conn(a);
  const worker = new Worker(QUEUE, async () => ({ ok: true }),
    { connection: wc, concurrency: a.concurrency, autorun: false });
  worker.on('error', (e) => console.error('worker error', e));
  await worker.waitUntilReady();
  let cpu0 = null;
  process.stdout.write('ready\n');
  const rl = require('readline').createInterface({ input: process.stdin });
  rl.on('line', async (line) => {
    if (line === 'go') { cpu0 = process.cpuUsage(); worker.run(); }
    if (line === 'stop') {
      const cpu = process.cpuUsage(cpu0 || undefined);
      await worker.close();
      process.stdout.write(JSON.stringify({ client_cpu_s: (cpu.user + cpu.system) / 1e6 }) + '\n');
      rl.close(); wc.disconnect();
    }
  });
}

async function enqueue(a) {
  const qc = conn(a);
  const queue = new Queue(QUEUE, { connection: qc });
  await queue.waitUntilReady();
  const out = { mode: 'enqueue', n: a.n };
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < a.n; i++) await queue.add('noop', payload(a, i));
  out.add_seq_per_s = a.n / (Number(process.hrtime.bigint() - t0) / 1e9);
  t0 = process.hrtime.bigint();
  let next = 0;
  const lane = async () => { while (next < a.n) { const i = next++; await queue.add('noop', payload(a, a.n + i)); } };
  await Promise.all(Array.from({ length: 64 }, lane));
  out.add_64_per_s = a.n / (Number(process.hrtime.bigint() - t0) / 1e9);
  out.add_bulk_per_s = a.n / await addBulk(queue, a, a.n, 2 * a.n);
  await queue.close();
  qc.disconnect();
  console.log(JSON.stringify(out));
}

async function latency(a) {
  const qc = conn(a), wc = conn(a);
  const queue = new Queue(QUEUE, { connection: qc });
  await queue.waitUntilReady();
  const sent = new Map(), lat = [], rec = [];
  let done = 0, finish;
  const allDone = new Promise((res) => { finish = res; });
  const worker = new Worker(QUEUE, async (job) => {
    const t1 = process.hrtime.bigint();
    const t0 = sent.get(job.data.metadata.n);
    if (t0 !== undefined) lat.push(Number(t1 - t0) / 1000);
    rec.push(job.processedOn - job.timestamp);
    return { ok: true };
  }, { connection: wc, concurrency: 1 });
  worker.on('completed', () => { if (++done === a.n) finish(); });
  await worker.waitUntilReady();
  await new Promise((r) => setTimeout(r, 300));   // let the Worker block on its marker
  const start = process.hrtime.bigint() + 100000000n;
  for (let i = 0; i < a.n; i++) {
    const due = start + BigInt(Math.round(i * 1e9 / a.rate));
    const now = process.hrtime.bigint();
    if (due > now) await new Promise((r) => setTimeout(r, Number(due - now) / 1e6));
    sent.set(i, process.hrtime.bigint());
    await queue.add('noop', payload(a, i));
  }
  await allDone;
  await worker.close();
  await queue.close();
  qc.disconnect(); wc.disconnect();
  const q = (xs, p) => { const s = [...xs].sort((x, y) => x - y); return s[Math.floor((s.length - 1) * p)]; };
  console.log(JSON.stringify({
    mode: 'latency', n: a.n, rate: a.rate, p50_us: q(lat, 0.5), p99_us: q(lat, 0.99), max_us: q(lat, 1),
    rec_p50_ms: q(rec, 0.5), rec_p99_ms: q(rec, 0.99), lat_us: lat, rec_ms: rec,
  }));
}

async function main() {
  const a = args();
  if (a.mode === 'fill') return fill(a);
  if (a.mode === 'consumer') return consumer(a);
  if (a.mode === 'enqueue') return enqueue(a);
  if (a.mode === 'latency') return latency(a);
  console.error('usage: node bench.js fill|consumer|enqueue|latency --port P ...');
  process.exit(2);
  return undefined;
}

main().catch((e) => { console.error(e); process.exit(1); });
