// Playable while encoding (docs/PLAYABLE.md): hls.js in Debian's chromium
// plays a split job's EVENT playlists while the job is still running. Run by
// tests/integration/test_playable.py, which serves tests/browser/players.html
// (its window.ss API), hls.js and the job's output folder from one HTTP
// server, and holds the job running (a worker stopped on a later chunk).
//
// Env: SS_BASE       the server (http://127.0.0.1:PORT)
//      SS_MASTER     path of master.m3u8 on it (/m/<name>-<run>/master.m3u8)
//      SS_AVAILABLE  seconds the EVENT playlists list now
//      SS_PROFILE    a fresh chromium user-data-dir
//      SS_ARTIFACTS  where playable-failure.png goes
//      SS_URL, SS_TOKEN, SS_JOB  the coordinator (its dashboard, with
//                    output_dir set), its token and the running job
//
// Checks: the master parses with every rung; playback starts at the
// beginning (EXT-X-START 0, not the live edge) and plays at least 8 s; a
// seek inside the listed range plays on from there; no fatal player error,
// no failed request. The dashboard's preview of the running job loads its
// playable_url and gets media. Prints one line "SUMMARY {json}".
import path from 'node:path';
import { assert, launch, sleep, waitFor } from './lib.mjs';

const BASE = process.env.SS_BASE;
const AVAILABLE = Number(process.env.SS_AVAILABLE);
const summary = { samples: [] };
const ctx = await launch(process.env.SS_PROFILE, { width: 800, height: 600 },
  ['--autoplay-policy=no-user-gesture-required']);
const page = ctx.pages()[0] || await ctx.newPage();
const failed = [];
page.on('requestfailed', (r) => failed.push(r.url() + ' ' + (r.failure() || {}).errorText));
page.on('response', (r) => { if (r.status() >= 400) failed.push(r.url() + ' -> ' + r.status()); });
const status = () => page.evaluate(() => ss.status());
let rc = 0;
try {
  await page.goto(BASE + '/players.html');
  await page.waitForFunction(() => window.ssReady === true, null, { timeout: 15000 });
  await page.evaluate((u) => ss.start('hls.js', u, {}), BASE + process.env.SS_MASTER);
  await waitFor('hls.js to parse the master', async () => (await status()).parsed, 20000);
  summary.levels = (await status()).levels;
  await page.evaluate(() => ss.play());
  // the first frames come from the start of the title
  const first = await waitFor('playback to start', async () => {
    const s = await status();
    return s.t > 0 && !s.paused ? s : null;
  }, 30000);
  summary.first_t = first.t;
  assert(first.t < 2, 'playback started at ' + first.t + ' s, not at the beginning');
  const played = await waitFor('8 s of playback', async () => {
    const s = await status();
    summary.samples.push({ t: s.t, buffered: s.buffered });
    const fatal = (s.errors || []).filter((e) => e.fatal);
    assert(!fatal.length, 'fatal player error: ' + JSON.stringify(fatal));
    return s.t >= 8 ? s : null;
  }, 45000, 250);
  summary.played_to = played.t;
  summary.duration = played.duration;
  // seek inside what the playlists list, and play on from there
  const to = Math.max(0, AVAILABLE - 4);
  await page.evaluate((t) => ss.seek(t), to);
  const after = await waitFor('playback after the seek to ' + to + ' s', async () => {
    const s = await status();
    return s.t >= to + 1 && s.t <= AVAILABLE + 0.5 && !s.paused ? s : null;
  }, 30000, 250);
  summary.seek_to = to;
  summary.after_seek = after.t;
  const s = await status();
  summary.errors = s.errors;
  summary.frames = s.frames;
  assert(!(s.errors || []).some((e) => e.fatal), 'fatal player error: ' + JSON.stringify(s.errors));
  assert(!failed.length, 'failed requests: ' + failed.join(', '));
  // the dashboard previews the running job
  const dash = await ctx.newPage();
  await dash.goto(process.env.SS_URL + '/');
  await dash.waitForSelector('#login:not([hidden])');
  await dash.fill('#token', process.env.SS_TOKEN);
  await dash.click('#login-form button[type=submit]');
  await dash.waitForSelector('#login', { state: 'hidden' });
  await dash.goto(process.env.SS_URL + '/#/jobs/' + process.env.SS_JOB);
  await dash.waitForSelector('#job-state[data-state=running]', { timeout: 15000 });
  await waitFor('the dashboard preview of the running job', async () => {
    const st = await dash.getAttribute('#player', 'data-state');
    if (st === 'error') throw new Error('preview error: ' + await dash.getAttribute('#player', 'data-error'));
    return ['ready', 'playing'].includes(st) && await dash.getAttribute('#player', 'data-live') === '1' &&
      Number(await dash.getAttribute('#player', 'data-frags')) >= 1;
  }, 30000);
  summary.dashboard_preview = await dash.getAttribute('#player', 'data-state');
} catch (e) {
  rc = 1;
  summary.problem = e.message;
  summary.failed_requests = failed;
  await page.screenshot({ path: path.join(process.env.SS_ARTIFACTS || '.', 'playable-failure.png') }).catch(() => {});
}
summary.ok = rc === 0;
console.log('SUMMARY ' + JSON.stringify(summary));
await ctx.close();
await sleep(10);
process.exit(rc);
