// The operator console in Debian's chromium, driven by playwright-core. Run
// by tests/integration/test_ops_console.py after its API checks: redis (ACL
// users), the coordinator (history sampled every second, a view_token) and
// the no-op queue worker w1 (one slot) are running.
//
// Env: SS_URL, SS_TOKEN, SS_VIEW_TOKEN, SS_ARTIFACTS, SS_PROFILE.
// Checks: the history chart draws the samples; a running job shows its
// speed (× real time, as its worker reports it) and ETA;
// the search box finds a job by its metadata; Drain and Resume on w1's row
// reach the API; "Retry failed" re-drives every failed job; with the view
// token the page says read-only and shows no button that changes anything;
// no console errors. Screenshot: console.png. Prints one JSON summary line.
import path from 'node:path';
import { apiClient, assert, launch, waitFor } from './lib.mjs';

const URL_ = process.env.SS_URL;
const TOKEN = process.env.SS_TOKEN;
const VIEW = process.env.SS_VIEW_TOKEN;
const ART = process.env.SS_ARTIFACTS;
const summary = {};
const apiCall = apiClient(URL_, TOKEN);

const ctx = await launch(process.env.SS_PROFILE, { width: 1180, height: 760 });
const errors = [];
function watch(page, name) {
  page.on('console', (m) => { if (m.type() === 'error') errors.push(name + ': ' + m.text()); });
  page.on('pageerror', (e) => errors.push(name + ': page error: ' + e.message));
  page.on('dialog', (d) => d.accept());   // confirm('Retry every failed job?')
}
async function login(page, tok) {
  await page.goto(URL_ + '/');
  await page.waitForSelector('#login:not([hidden])');
  await page.fill('#token', tok);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#overview:not([hidden])');
}

try {
  const page = ctx.pages()[0] || await ctx.newPage();
  watch(page, 'main');
  await login(page, TOKEN);
  assert(await page.isHidden('#readonly'), 'the full token is not read-only');

  // ---- the history chart
  await waitFor('history samples', async () =>
    Number(await page.getAttribute('#history', 'data-samples')) >= 2);
  assert(await page.locator('#history polyline.done').count() === 1, 'completions line');
  summary.history = await page.textContent('#history-legend');

  // ---- search by metadata
  const tagged = (await apiCall('POST', '/v1/jobs', { source: 'file:///console/globex.mp4',
    metadata: { customer: 'Globex', sleep_ms: 10 } })).id;
  await page.fill('#search', 'GLOBEX');
  await waitFor('search result', async () => {
    const ids = await page.$$eval('#jobs tbody tr', (rs) => rs.map((r) => r.dataset.job));
    return ids.length === 1 && ids[0] === tagged;
  });
  await page.fill('#search', '');
  summary.search = 'ok';

  // ---- a running job's ETA, and the screenshot
  const run = (await apiCall('POST', '/v1/jobs', { source: 'file:///console/long.mp4',
    metadata: { sleep_ms: 8000, speed: 3.5 } })).id;
  const eta = await waitFor('ETA on the running job', async () => {
    const t = (await page.textContent(`#jobs tr[data-job="${run}"] td.eta`)) || '';
    return /\d/.test(t) ? t : null;
  });
  summary.eta = eta;
  await waitFor('speed on the running job', async () =>
    ((await page.textContent(`#jobs tr[data-job="${run}"] td.speed`)) || '').includes('3.50×'));
  await page.screenshot({ path: path.join(ART, 'console.png') });

  // ---- drain and resume w1 from its row
  const w1 = '#workers tr[data-worker="w1"]';
  await page.click(`${w1} [data-action=drain]`);
  await page.waitForSelector(`${w1} [data-drained]`);
  let w = (await apiCall('GET', '/v1/workers')).workers.find((x) => x.id === 'w1');
  assert(w.drain_requested === true, 'drained through the API');
  await page.click(`${w1} [data-action=resume]`);
  await page.waitForSelector(`${w1} [data-drained]`, { state: 'detached' });
  w = (await apiCall('GET', '/v1/workers')).workers.find((x) => x.id === 'w1');
  assert(w.drain_requested === false, 'resumed through the API');
  summary.drain = 'ok';

  // ---- bulk retry of the failed jobs
  const failed = (await apiCall('GET', '/v1/jobs?state=failed')).total;
  assert(failed >= 1, 'failed jobs to retry');
  await page.click('[data-bulk="retry:failed"]');
  await waitFor('bulk retry message', async () =>
    (await page.textContent('#bulk-msg')).includes('retried ' + failed + ' failed'));
  summary.bulk_retry = failed;

  // ---- the view token: read-only, no buttons that change anything
  await apiCall('DELETE', '/v1/jobs/' + run);
  const ro = await ctx.newPage();
  watch(ro, 'view');
  await login(ro, VIEW);
  await ro.waitForSelector('#readonly:not([hidden])');
  await ro.waitForSelector('#workers tr[data-worker="w1"]');
  await waitFor('history on the wall screen', async () =>
    Number(await ro.getAttribute('#history', 'data-samples')) >= 2);
  assert(await ro.isHidden('#bulk'), 'bulk buttons hidden');
  assert(await ro.isHidden('#workers [data-action=drain]'), 'drain button hidden');
  assert(await ro.locator('#jobs [data-action]:visible').count() === 0, 'no job buttons');
  summary.view_token = 'ok';

  assert(errors.length === 0, 'console errors:\n' + errors.join('\n'));
  console.log('SUMMARY ' + JSON.stringify(summary));
} finally {
  await ctx.close();
}
