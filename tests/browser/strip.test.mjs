// A split job's chunk strip in Debian's chromium, driven by playwright-core.
// Run by tests/integration/test_ops_dashboard.py while a real split job
// runs on the real worker daemon; the page is signed in with the read-only
// view token. The job is queued behind a drained worker until this script
// has its page open (it writes SS_READY), then the test resumes the worker;
// once the plan is done the test drains the worker again, holding the job
// half done until this script has seen it live on both pages (it writes
// SS_READY.live): the whole job can end within one of the page's polls.
//
// Env: SS_URL, SS_VIEW_TOKEN, SS_SPLIT_JOB, SS_ARTIFACTS, SS_PROFILE, SS_READY.
// Checks: the job page shows the strip with one cell per work item in the
// API's order (plan, one cell per chunk, audio, finalize), chunk cells
// sized by their time range, the text alternative of each cell ("chunk 2
// of 3: done by real, attempt 1"), the tooltip (worker, attempts, CPU
// seconds, timings), and the cells updating live (states other than done seen)
// until every one is done. A second tab on the overview: the job's row in
// the jobs list shows the same strip, small, while the job runs (its cells
// in the API's order, their states and text alternatives updating live)
// and none once it completed.
// Screenshots strip.png and strip-row.png. Prints one JSON summary line.
import fs from 'node:fs';
import path from 'node:path';
import { apiClient, assert, launch, waitFor } from './lib.mjs';

const URL_ = process.env.SS_URL;
const VIEW = process.env.SS_VIEW_TOKEN;
const JOB = process.env.SS_SPLIT_JOB;
const ART = process.env.SS_ARTIFACTS;
const summary = { seen: {} };
const apiCall = apiClient(URL_, VIEW);

const ctx = await launch(process.env.SS_PROFILE, { width: 1280, height: 860 });
const errors = [];
try {
  const page = ctx.pages()[0] || await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push('page error: ' + e.message));
  await page.goto(URL_ + '/');
  await page.waitForSelector('#login:not([hidden])');
  await page.fill('#token', VIEW);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#overview:not([hidden])');
  await page.goto(URL_ + '/#/jobs/' + JOB);
  await page.waitForSelector('#job-state[data-state=queued]');
  assert(await page.isHidden('#strip-box'), 'no strip before the plan');
  assert(await page.isVisible('#readonly'), 'signed in read-only');
  // the overview in a second tab (session storage is per tab: sign in there too)
  const ov = await ctx.newPage();
  ov.on('console', (m) => { if (m.type() === 'error') errors.push('overview: ' + m.text()); });
  ov.on('pageerror', (e) => errors.push('overview page error: ' + e.message));
  await ov.goto(URL_ + '/');
  await ov.waitForSelector('#login:not([hidden])');
  await ov.fill('#token', VIEW);
  await ov.click('#login-form button[type=submit]');
  await ov.waitForSelector('#jobs tr[data-job="' + JOB + '"][data-state=queued]');
  const ROW = '#jobs tr[data-job="' + JOB + '"]';
  assert(!(await ov.$(ROW + ' .strip')), 'no strip in the row of a queued job');
  fs.writeFileSync(process.env.SS_READY, 'open\n');   // the test resumes the worker

  // the cells as they change, until the job is completed and every cell done
  const cells = () => page.$$eval('#job-strip [role=listitem]', (cs) => cs.map((c) => ({
    name: c.dataset.item, kind: c.dataset.kind, state: c.dataset.state, label: c.getAttribute('aria-label'),
    title: c.title, width: c.getBoundingClientRect().width })));
  const rowCells = () => ov.$$eval(ROW + ' .strip.mini [role=listitem]', (cs) => cs.map((c) => ({
    name: c.dataset.item, state: c.dataset.state, label: c.getAttribute('aria-label'),
    width: c.getBoundingClientRect().width,
    // why a cell could measure 0 (seen once in 5 runs: the plan cell of the last poll)
    why: { strip: c.parentElement.getBoundingClientRect().width, row: c.closest('tr').getBoundingClientRect().width,
      overviewHidden: document.getElementById('overview').hidden, visibility: document.visibilityState,
      display: getComputedStyle(c).display, flex: getComputedStyle(c).flex } })));
  summary.row = { polls: 0, seen: {} };
  let rowLast = null;
  let rowShot = false;
  let liveSaid = false;
  const last = await waitFor('every cell done', async () => {
    const cs = await cells();
    for (const c of cs) (summary.seen[c.state] = summary.seen[c.state] || new Set()).add(c.name);
    const rs = await rowCells();
    if (rs.length) {
      summary.row.polls++;
      rowLast = rs;
      for (const c of rs) (summary.row.seen[c.state] = summary.row.seen[c.state] || new Set()).add(c.name);
      if (!rowShot && rs.some((c) => c.state === 'running')) {
        rowShot = true;
        await ov.locator(ROW).screenshot({ path: path.join(ART, 'strip-row.png') });
      }
    }
    // seen live on both pages: the test, which holds the job half done
    // until then (its worker drained), lets it finish
    if (!liveSaid && Object.keys(summary.seen).some((k) => k !== 'done') && summary.row.polls >= 2 &&
        Object.keys(summary.row.seen).some((k) => k !== 'done')) {
      fs.writeFileSync(process.env.SS_READY + '.live', 'live\n');
      liveSaid = true;
    }
    const st = await page.getAttribute('#job-state', 'data-state');
    return st === 'completed' && cs.length && cs.every((c) => c.state === 'done') ? cs : null;
  }, 120000, 150);
  for (const k of Object.keys(summary.seen)) summary.seen[k] = summary.seen[k].size;
  for (const k of Object.keys(summary.row.seen)) summary.row.seen[k] = summary.row.seen[k].size;
  // it updated live: cells were seen in other states before all were done
  assert(Object.keys(summary.seen).some((k) => k !== 'done'), 'live states: ' + JSON.stringify(summary.seen));

  // the same items as the API, in its order
  const job = await apiCall('GET', '/v1/jobs/' + JOB);
  assert(JSON.stringify(last.map((c) => c.name)) === JSON.stringify(job.items.map((i) => i.name)),
    'cells in the API order: ' + last.map((c) => c.name) + ' vs ' + job.items.map((i) => i.name));
  const chunks = last.filter((c) => c.kind === 'chunk');
  const api = job.items.filter((i) => i.kind === 'chunk');
  assert(chunks.length === api.length && chunks.length >= 2, 'one cell per chunk: ' + chunks.length);
  for (const k of ['plan', 'audio', 'finalize'])
    assert(last.some((c) => c.kind === k), 'a ' + k + ' cell');
  chunks.forEach((c, i) => {
    const it = api[i];
    const re = new RegExp('^chunk ' + (i + 1) + ' of ' + api.length + ': done by ' + it.worker + ', attempt 1$');
    assert(re.test(c.label), 'text alternative: ' + c.label);
    assert(c.title.includes('worker: ' + it.worker) && /attempts: 1/.test(c.title) && /CPU: \d/.test(c.title) &&
      /started: /.test(c.title) && /ran: /.test(c.title), 'tooltip: ' + c.title);
  });
  // chunk cells are as wide as their time range (gaps and rounding aside)
  const per = chunks.map((c, i) => c.width / (api[i].end_seconds - api[i].start_seconds));
  assert(Math.max(...per) / Math.min(...per) < 1.3, 'widths by duration: ' + per.map((x) => x.toFixed(1)));
  const side = last.filter((c) => c.kind !== 'chunk');
  assert(side.every((c) => c.width < Math.min(...chunks.map((x) => x.width)) + 1), 'small side cells');
  assert(/chunks, \d+ done/.test(await page.textContent('#strip-summary')), 'summary line');

  // the overview's row: the same strip while the job ran, updated live
  assert(rowLast, 'the running job\'s row never showed a strip: ' + JSON.stringify(summary.row));
  assert(JSON.stringify(rowLast.map((c) => c.name)) === JSON.stringify(job.items.map((i) => i.name)),
    'row cells in the API order: ' + rowLast.map((c) => c.name) + ' vs ' + job.items.map((i) => i.name));
  assert(Object.keys(summary.row.seen).some((k) => k !== 'done') && summary.row.polls >= 2,
    'row strip live: ' + JSON.stringify(summary.row));
  let k = 0;
  for (const c of rowLast) {
    const it = job.items.find((i) => i.name === c.name);
    const what = it.kind === 'chunk' ? 'chunk ' + (++k) + ' of ' + api.length : it.kind;
    assert(c.label.startsWith(what + ': '), 'row cell text alternative: ' + c.label + ' (want ' + what + ')');
    assert(c.width > 0, 'row cell shown: ' + c.name + ' ' + JSON.stringify(c.why) + ' (row polls: ' +
      summary.row.polls + ')');
  }
  // completed: no strip in the row any more
  await waitFor('no strip in the completed job\'s row', async () =>
    (await ov.$(ROW + '[data-state=completed]')) && !(await ov.$(ROW + ' .strip')), 15000, 150);
  summary.chunks = chunks.length;
  await page.screenshot({ path: path.join(ART, 'strip.png') });
  assert(!errors.length, 'no console errors: ' + errors.join(' | '));
  console.log('SUMMARY ' + JSON.stringify(summary));
} finally {
  await ctx.close();
}
