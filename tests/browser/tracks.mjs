// Several audio tracks and two video codecs in real players (hls.js,
// dash.js, Shaka Player) in Debian's chromium. Run by
// tests/integration/test_media_players_tracks.py, which encodes one short
// clip (three audio tracks, H.264 + AV1 ladders) and serves it with
// tests/browser/players.html from one HTTP server on a free loopback port.
//
// Env: SS_BASE      the server (http://127.0.0.1:PORT)
//      SS_OUTPUT    JSON {name, duration, tracks: [{folder, lang, label,
//                   role, default}], switch_to: lang, h264: folder, av1: folder}
//      SS_PROFILE   a fresh chromium user-data-dir
//      SS_ARTIFACTS where failure-*.png and tracks-summary.json go
//
// For hls.js (master.m3u8), dash.js (manifest.mpd), Shaka (both), with the
// player choosing its own start (no forced level):
//   - AV1 visible (chromium decodes it with dav1d): the player lists every
//     audio track with its language and label (the HLS NAME / DASH Label),
//     the default one active, and plays AV1; switching to another language
//     makes that track the active one, its segments are fetched and
//     playback and audio decoding go on;
//   - AV1 hidden (MediaSource.isTypeSupported, canPlayType and
//     MediaCapabilities say no to av01, in that page only): the same player
//     plays H.264 and never fetches an AV1 segment (with AV1 visible,
//     nothing of H.264 is fetched once AV1 began).
// Prints one line "SUMMARY {json}".
import fs from 'node:fs';
import path from 'node:path';
import { launch, waitFor } from './lib.mjs';

const BASE = process.env.SS_BASE;
const OUT = JSON.parse(process.env.SS_OUTPUT || '{}');
const ART = process.env.SS_ARTIFACTS || '.';
const RUNS = [
  { id: 'hlsjs', player: 'hls.js', manifest: 'master.m3u8' },
  { id: 'dashjs', player: 'dash.js', manifest: 'manifest.mpd' },
  { id: 'shakahls', player: 'shaka', manifest: 'master.m3u8' },
  { id: 'shakadash', player: 'shaka', manifest: 'manifest.mpd' },
];

const summary = { runs: [], problems: [] };
const log = (...a) => console.log('[tracks]', ...a);
const fail = (m) => { summary.problems.push(m); log('PROBLEM:', m); };
// a fatal player error: waitFor (lib.mjs) stops at once
class PlayerError extends Error { constructor(m) { super(m); this.fatal = true; } }

// What a chromium without an AV1 decoder answers (this page only).
function hideAv1() {
  const NO = /av01/i;
  const its = MediaSource.isTypeSupported.bind(MediaSource);
  MediaSource.isTypeSupported = (t) => (NO.test(t) ? false : its(t));
  const asb = MediaSource.prototype.addSourceBuffer;
  MediaSource.prototype.addSourceBuffer = function (t) {
    if (NO.test(t)) throw new DOMException('av01 is unsupported (hidden by the test)', 'NotSupportedError');
    return asb.call(this, t);
  };
  const cpt = HTMLMediaElement.prototype.canPlayType;
  HTMLMediaElement.prototype.canPlayType = function (t) { return NO.test(t) ? '' : cpt.call(this, t); };
  if (navigator.mediaCapabilities) {
    const di = navigator.mediaCapabilities.decodingInfo.bind(navigator.mediaCapabilities);
    navigator.mediaCapabilities.decodingInfo = (c) => (c.video && NO.test(c.video.contentType)
      ? Promise.resolve({ supported: false, smooth: false, powerEfficient: false, configuration: c }) : di(c));
  }
}

const ctx = await launch(process.env.SS_PROFILE, { width: 800, height: 600 }, ['--autoplay-policy=no-user-gesture-required']);
const consoleErrors = [];
async function openPage(noAv1) {
  const page = noAv1 ? await ctx.newPage() : (ctx.pages()[0] || await ctx.newPage());
  if (noAv1) await page.addInitScript(hideAv1);
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push('page error: ' + e.message));
  page.requests = [];
  page.on('request', (r) => page.requests.push({ url: r.url(), at: Date.now() }));
  page.on('requestfailed', (r) => {
    const why = r.failure() ? r.failure().errorText : '?';
    if (!/ERR_ABORTED/.test(why)) consoleErrors.push('request failed: ' + r.url() + ' ' + why);
  });
  await page.goto(BASE + '/players.html');
  await page.waitForFunction(() => window.ssReady === true, null, { timeout: 15000 });
  return page;
}

async function runOne(page, run, noAv1) {
  const tag = OUT.name + '-' + run.id + (noAv1 ? 'noav1' : '');
  const pre = '/m/' + tag + '/';
  const fetched = (since = 0) => page.requests.filter((q) => q.at >= since).map((q) => new URL(q.url).pathname)
    .filter((p) => p.startsWith(pre)).map((p) => p.slice(pre.length));
  const r = { tag, player: run.player, manifest: run.manifest, av1Hidden: noAv1, problems: [] };
  const problem = (m) => { r.problems.push(m); fail(tag + ': ' + m); };
  const t0 = Date.now();
  let st = null;
  const check = async () => {
    st = await page.evaluate(() => ss.status());
    const fatal = st.errors.filter((e) => e.fatal);
    if (fatal.length) throw new PlayerError('player error: ' + fatal.map((e) => e.source + ': ' + e.msg).join('; '));
    return st;
  };
  const audio = () => page.evaluate(() => ss.audio());
  log('---', tag);
  await page.evaluate(([p, u]) => ss.start(p, u, { auto: true }), [run.player, BASE + pre + run.manifest]);
  try {
    await waitFor(run.player + ' to parse ' + run.manifest, async () => (await check()).parsed, 15000);
    await page.evaluate(() => ss.play());
    await waitFor('playback past 1 s', async () => (await check()).t >= 1.0, 20000);
    const a = await audio();
    r.codec = a.codec;
    r.tracks = a.tracks;
    const want = noAv1 ? 'avc1' : 'av01';
    if (!String(a.codec).startsWith(want)) problem('plays ' + a.codec + ', want ' + want);
    const vfolder = noAv1 ? OUT.h264 : OUT.av1;
    const other = noAv1 ? OUT.av1 : OUT.h264;
    const q = fetched();
    if (!q.some((x) => x.startsWith(vfolder + '/seg_'))) problem('no segment of ' + vfolder + ' fetched');
    // Without AV1, nothing of it may be fetched. With AV1, nothing of H.264
    // once AV1 began (Shaka's HLS parser reads the first variant's init and
    // first segments for their start times before it picks the codec).
    const av1At = q.findIndex((x) => x.startsWith(vfolder + '/'));
    const stray = q.filter((x, i) => x.startsWith(other + '/') && (noAv1 || i > av1At));
    if (stray.length) problem(other + ' was fetched: ' + stray.join(' '));
    if (!(st.frames > 0 && st.videoBytes > 0)) problem('no decoded video frames');

    // ---- the audio tracks: languages, labels, the default one active
    const got = a.tracks.map((t) => t.lang + '|' + t.label).sort().join(', ');
    const exp = OUT.tracks.map((t) => t.lang + '|' + t.label).sort().join(', ');
    if (got !== exp) problem('audio tracks listed ' + got + ', the output has ' + exp);
    const active = a.tracks.filter((t) => t.active).map((t) => t.lang);
    const def = OUT.tracks.find((t) => t.default);
    if (active.join() !== def.lang) problem('active audio track(s) ' + active.join() + ', the default is ' + def.lang);
    if (!q.some((x) => x.startsWith(def.folder + '/seg_'))) problem('no segment of the default audio ' + def.folder + ' fetched');
    if (noAv1) return r;

    // ---- switch the language: that track active, its segments, playing on
    const to = OUT.tracks.find((t) => t.lang === OUT.switch_to);
    const sw = Date.now();
    const tAt = st.t;
    const bytesAt = st.audioBytes;
    await page.evaluate((l) => ss.selectAudio(l), to.lang);
    await waitFor('the switch to the ' + to.lang + ' track (active, ' + to.folder + ' segments fetched, playing on)', async () => {
      await check();
      const now = await audio();
      const on = now.tracks.filter((t) => t.active).map((t) => t.lang);
      return on.length === 1 && on[0] === to.lang && fetched(sw).some((x) => x.startsWith(to.folder + '/seg_')) &&
        st.t > tAt + 1.0 && st.audioBytes > bytesAt;
    }, 20000);
    r.switch_s = (Date.now() - sw) / 1000;
    r.after = (await audio()).tracks.filter((t) => t.active);
    r.fetchedAfterSwitch = [...new Set(fetched(sw))].filter((x) => x.endsWith('.m4s') || x.endsWith('.mp4')).sort();
    for (const e of st.errors.filter((x) => !/bufferStalledError/.test(x.msg))) problem('player reported: ' + e.source + ': ' + e.msg);
  } catch (e) {
    let s = null;
    try { s = await page.evaluate(() => ss.status()); } catch (x) { /* page gone */ }
    problem((e.message || String(e)) + (s ? '\n    state: ' + JSON.stringify({ t: s.t, current: s.current, errors: s.errors, events: s.events.slice(-10) }) : ''));
    try { await page.screenshot({ path: path.join(ART, 'failure-' + tag + '.png') }); } catch (x) { /* gone */ }
  } finally {
    r.wall_s = (Date.now() - t0) / 1000;
    r.requests = [...new Set(fetched())];
    await page.evaluate(() => ss.stop()).catch((e) => problem('stop: ' + e.message));
    log(tag, r.problems.length ? 'FAILED' : 'ok', JSON.stringify({ codec: r.codec, switch_s: r.switch_s, wall_s: r.wall_s }));
  }
  return r;
}

try {
  const withAv1 = await openPage(false);
  const av1 = await withAv1.evaluate(() => MediaSource.isTypeSupported('video/mp4; codecs="av01.0.00M.08"'));
  summary.av1_supported = av1;
  if (!av1) fail('this chromium does not decode AV1 (MediaSource.isTypeSupported says no): the AV1 half cannot run');
  for (const run of RUNS) if (av1) summary.runs.push(await runOne(withAv1, run, false));
  const noAv1 = await openPage(true);
  const hidden = await noAv1.evaluate(() => MediaSource.isTypeSupported('video/mp4; codecs="av01.0.00M.08"'));
  if (hidden) fail('hiding AV1 did not work: isTypeSupported still says yes');
  for (const run of RUNS) summary.runs.push(await runOne(noAv1, run, true));
} catch (e) {
  fail('the browser test stopped: ' + (e.stack || e));
}
if (consoleErrors.length) fail('console errors:\n  ' + consoleErrors.join('\n  '));
await ctx.close();
try { fs.writeFileSync(path.join(ART, 'tracks-summary.json'), JSON.stringify(summary, null, 2)); } catch (e) { /* no dir */ }
console.log('SUMMARY ' + JSON.stringify(summary));
process.exit(summary.problems.length ? 1 : 0);
