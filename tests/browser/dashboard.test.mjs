// The dashboard in Debian's chromium, driven by playwright-core. Run by
// tests/integration/test_ops_dashboard.py, which starts redis-server, the
// coordinator (output_dir = the workers' file:// storage), encodes one real
// clip with streamscale-worker (SS_REAL_JOB), then leaves the no-op queue
// worker (tests/tools/ss_queue_worker, slots 1) running for this script.
//
// Env: SS_URL, SS_TOKEN, SS_REAL_JOB, SS_S3_JOB (a real encode whose result
//      names s3:// URLs), SS_ARTIFACTS (screenshots go there),
//      SS_PROFILE (a fresh chromium user-data-dir).
// Checks: token asked once (wrong token refused, kept across a reload, not
// shared with a new session); a job seen queued, then running with its
// progress bar moving, then completed; the workers table; cancel and retry
// from the job page; the real job's page (demo.sh's #/jobs/ID URL): events
// timeline, renditions with bitrates, poster thumbnail, and the hls.js
// preview playing; an s3:// job's preview from public_base_url; no console
// errors. Prints one JSON summary line.
import fs from 'node:fs';
import path from 'node:path';
import { apiClient, assert, launch, waitFor } from './lib.mjs';

const URL_ = process.env.SS_URL;
const TOKEN = process.env.SS_TOKEN;
const REAL = process.env.SS_REAL_JOB;
const S3JOB = process.env.SS_S3_JOB;
const ART = process.env.SS_ARTIFACTS;
const PROFILE = process.env.SS_PROFILE;
const summary = {};

function log(...a) { console.log('[dashboard]', ...a); }
const apiCall = apiClient(URL_, TOKEN);
const submit = (spec) => apiCall('POST', '/v1/jobs', spec).then((j) => j.id);

const ctx = await launch(PROFILE, { width: 1280, height: 860 },
  ['--autoplay-policy=no-user-gesture-required']);
const errors = [];
let allow401 = false;
function watch(page, name) {
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const t = m.text();
    if (allow401 && /status of 401/.test(t)) return;   // the wrong-token step, on purpose
    errors.push(name + ': ' + t);
  });
  page.on('pageerror', (e) => errors.push(name + ': page error: ' + e.message));
  page.on('dialog', (d) => d.accept());   // confirm('Cancel job ...?')
}

try {
  const page = ctx.pages()[0] || await ctx.newPage();
  watch(page, 'main');

  // ---- the token: asked once, a wrong one refused
  await page.goto(URL_ + '/');
  await page.waitForSelector('#login:not([hidden])');
  allow401 = true;
  await page.fill('#token', 'not-the-token');
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#login-error:not([hidden])');
  assert(/refused/.test(await page.textContent('#login-error')), 'wrong token message');
  allow401 = false;
  await page.fill('#token', TOKEN);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#overview:not([hidden])');
  await page.waitForSelector('#queue [data-stat=high]');
  assert(await page.evaluate(() => sessionStorage.getItem('streamscale.token')) === TOKEN, 'token in sessionStorage');
  await page.reload();
  await page.waitForSelector('#overview:not([hidden])');
  assert(await page.isHidden('#login'), 'no second token prompt after a reload');
  const page2 = await ctx.newPage();
  watch(page2, 'second-tab');
  await page2.goto(URL_ + '/');
  await page2.waitForSelector('#login:not([hidden])');   // sessionStorage is per tab
  await page2.close();
  summary.token = 'ok';

  // ---- a job queued behind another, then running with a moving bar, then completed
  const a = await submit({ source: 'file:///dash/a.mp4', metadata: { sleep_ms: 3500 } });
  const b = await submit({ source: 'file:///dash/b.mp4', metadata: { sleep_ms: 6000 } });
  const row = (id) => `#jobs tr[data-job="${id}"]`;
  await page.waitForSelector(row(b) + '[data-state=queued]', { timeout: 15000 });
  // the worker is busy with A: its row shows 1/1 and A's mini progress bar
  const wrow = '#workers tr[data-worker="dash-worker"]';
  await page.waitForSelector(wrow + ` .minijob[data-job="${a}"]`, { timeout: 15000 });
  assert((await page.textContent(wrow + ' td:nth-child(4)')).trim() === '1 / 1', 'busy slots 1 / 1');
  // and says why it takes no more work
  await page.waitForSelector(wrow + ' [data-gate="slots full (1/1)"]', { timeout: 15000 });
  assert((await page.textContent(wrow + ' .badge.gate')).includes('not claiming: slots full (1/1)'), 'gate reason shown');
  const seen = [];
  const states = new Set();
  await waitFor('job B completed in the list', async () => {
    const st = await page.getAttribute(row(b), 'data-state');
    const v = Number(await page.getAttribute(row(b) + ' [role=progressbar]', 'aria-valuenow'));
    states.add(st);
    if (st === 'running' && (seen.length === 0 || seen[seen.length - 1] !== v)) seen.push(v);
    return st === 'completed' ? v : 0;
  }, 40000, 150);
  const mid = seen.filter((v) => v > 0 && v < 100);
  log('job B states', [...states].join(','), 'progress seen', seen.join(' '));
  assert(states.has('queued') && states.has('running') && states.has('completed'), 'queued -> running -> completed');
  assert(mid.length >= 3, 'the bar moved through at least 3 values: ' + seen.join(' '));
  for (let i = 1; i < mid.length; i++) assert(mid[i] > mid[i - 1], 'progress only grows: ' + mid.join(' '));
  assert(Number(await page.getAttribute(row(b) + ' [role=progressbar]', 'aria-valuenow')) === 100, 'completed at 100%');
  summary.progress_values = mid.length;

  // ---- a lively overview for the screenshot: one running, one queued
  const c = await submit({ source: 'file:///dash/c.mp4', metadata: { sleep_ms: 20000 }, priority: 'high' });
  const d = await submit({ source: 'file:///dash/d.mp4', metadata: { sleep_ms: 300 }, priority: 'low' });
  await page.waitForSelector(row(c) + '[data-state=running]', { timeout: 15000 });
  await page.waitForSelector(row(d) + '[data-state=queued]', { timeout: 15000 });
  await waitFor('C past 25%', async () => Number(await page.getAttribute(row(c) + ' [role=progressbar]', 'aria-valuenow')) > 25, 20000);
  await page.screenshot({ path: path.join(ART, 'dashboard.png') });

  // ---- cancel and retry from the job page
  await page.click(row(c) + ' a');
  await page.waitForSelector('#job:not([hidden])');
  assert(page.url().endsWith('#/jobs/' + c), 'job page URL');
  await page.waitForSelector('#job-cancel:not([hidden])');
  await page.click('#job-cancel');
  await page.waitForSelector('#job-state[data-state=cancelled]', { timeout: 15000 });
  await page.waitForSelector('#events li[data-type="job.cancelled"]', { timeout: 10000 });
  await page.waitForSelector('#job-retry:not([hidden])');
  await page.click('#job-retry');
  await page.waitForSelector('#job-state[data-state=running], #job-state[data-state=queued]', { timeout: 15000 });
  await waitFor('the retried job running', async () => (await apiCall('GET', '/v1/jobs/' + c)).state === 'running', 20000);
  await apiCall('DELETE', '/v1/jobs/' + c);   // free the worker
  await page.waitForSelector('#job-state[data-state=cancelled]', { timeout: 15000 });
  summary.cancel_retry = 'ok';

  // ---- the real encode: demo.sh's URL, events, renditions, poster, player
  await page.goto(URL_ + '/#/jobs/' + REAL);
  await page.waitForSelector('#job-state[data-state=completed]', { timeout: 15000 });
  for (const t of ['job.queued', 'job.started', 'job.completed'])
    await page.waitForSelector(`#events li[data-type="${t}"]`, { timeout: 10000 });
  const rend = await page.$$eval('#renditions tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
  log('renditions', JSON.stringify(rend));
  assert(rend.length >= 2, 'a video rendition and audio');
  assert(rend.some((r) => /\d+×\d+/.test(r[1]) && /[kM]b\/s/.test(r[2]) && /(PSNR|SSIM|CRF)/.test(r[6])), 'bitrates and quality');
  await page.waitForSelector('#poster-fig:not([hidden])');
  await waitFor('poster loaded', () => page.$eval('#poster', (i) => i.complete && i.naturalWidth > 0));
  summary.poster = await page.$eval('#poster', (i) => i.naturalWidth + 'x' + i.naturalHeight);
  const h264 = await page.evaluate(() => window.MediaSource && MediaSource.isTypeSupported('video/mp4; codecs="avc1.42E01E"'));
  await waitFor('hls.js manifest and a segment', async () => {
    const st = await page.getAttribute('#player', 'data-state');
    if (st === 'error') throw new Error('player error: ' + await page.getAttribute('#player', 'data-error'));
    return ['ready', 'playing'].includes(st) && Number(await page.getAttribute('#player', 'data-frags')) >= 1;
  }, 20000);
  summary.levels = Number(await page.getAttribute('#player', 'data-levels'));
  if (h264) {
    await page.evaluate(() => { const v = document.getElementById('video'); v.muted = true; return v.play(); });
    await waitFor('playback past 1.5 s', async () => {
      const st = await page.getAttribute('#player', 'data-state');
      if (st === 'error') throw new Error('player error: ' + await page.getAttribute('#player', 'data-error'));
      return st === 'playing' && (await page.$eval('#video', (v) => v.currentTime)) >= 1.5;
    }, 30000);
    await page.$eval('#video', (v) => v.pause());
    summary.playback = 'played ' + (await page.$eval('#video', (v) => v.currentTime.toFixed(2))) + ' s';
  } else {
    summary.playback = 'chromium reports no H.264 decoder: checked that hls.js loaded the manifest and segments';
    log(summary.playback);
  }
  await page.screenshot({ path: path.join(ART, 'job.png'), fullPage: true });

  // ---- an s3:// output: previewed from public_base_url (dashboard.json)
  const pub = (await (await fetch(URL_ + '/dashboard.json')).json()).public_base_url;
  assert(pub, 'public_base_url in dashboard.json');
  await page.goto(URL_ + '/#/jobs/' + S3JOB);
  await page.waitForSelector('#job-state[data-state=completed]', { timeout: 15000 });
  await waitFor('the s3 preview loading', async () => {
    const st = await page.getAttribute('#player', 'data-state');
    if (st === 'error') throw new Error('player error: ' + await page.getAttribute('#player', 'data-error'));
    return st === 'ready' && Number(await page.getAttribute('#player', 'data-frags')) >= 1;
  }, 20000);
  const hlsHref = await page.getAttribute('#outputs a[data-output=hls]', 'href');
  assert(hlsHref === pub + S3JOB + '/master.m3u8', 'preview URL under public_base_url: ' + hlsHref);
  summary.s3_preview = hlsHref;

  // ---- the overview again, for the record
  await page.goto(URL_ + '/#/');
  await page.waitForSelector(row(REAL) + '[data-state=completed]', { timeout: 15000 });
  assert(errors.length === 0, 'console errors:\n' + errors.join('\n'));
  summary.console_errors = 0;
  console.log('SUMMARY ' + JSON.stringify(summary));
} catch (e) {
  for (const p of ctx.pages()) {
    try { await p.screenshot({ path: path.join(ART, 'failure.png'), fullPage: true }); } catch (x) { /* gone */ }
  }
  console.error('[dashboard] FAILED: ' + (e.stack || e));
  if (errors.length) console.error('[dashboard] console errors:\n' + errors.join('\n'));
  await ctx.close();
  process.exit(1);
}
await ctx.close();
fs.writeFileSync(path.join(ART, 'summary.json'), JSON.stringify(summary, null, 2));
