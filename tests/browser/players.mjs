// Our CMAF output in three real players (hls.js, dash.js, Shaka Player) in
// Debian's chromium, driven by playwright-core. Run by
// tests/integration/test_media_players.py, which encodes the outputs with
// streamscale-worker and serves them, tests/browser/players.html and the
// players' node_modules from one HTTP server on a free loopback port.
//
// Env: SS_BASE      the server (http://127.0.0.1:PORT)
//      SS_OUTPUTS   JSON [{name, renditions:[{name,width,height,codecs}],
//                   audio, subtitles, thumbs, duration}]; the output `name`
//                   is served under /m/<name>-<run>/ (the run tag lets the
//                   server's log say which run fetched what)
//      SS_PROFILE   a fresh chromium user-data-dir
//      SS_ARTIFACTS where failure.png and players-summary.json go
//      SS_SIMULATE_NO_H264=1  make this chromium look like a build without
//                   an H.264 decoder (tests the parse-only path)
//
// For each output and each of hls.js (master.m3u8), dash.js (manifest.mpd),
// Shaka (master.m3u8) and Shaka (manifest.mpd):
//   - the player lists every rendition with its size;
//   - playback starts and currentTime passes 3 s;
//   - a forced switch to another rendition (top, or the lowest when the top
//     was playing) fetches that rendition's init and media segments, the
//     player reports it and the <video> takes its height, playback goes on;
//   - subtitles (when the output has them): the player lists the track and
//     its cues reach the <video>'s text track at the right times;
//   - a seek to the last second plays to `ended`;
//   - no player error, no failed request, no console error.
// Once per output: the storyboard VTT parsed by chromium's WebVTT parser,
// every #xywh region inside the decoded sprite; the poster decodes.
// If chromium cannot decode the output's codecs, it says so loudly and only
// checks that each player parses the manifest and fetches init and media
// segments; the Python side then decodes with ffmpeg.
// Prints one line "SUMMARY {json}".
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import { waitFor } from './lib.mjs';

const BASE = process.env.SS_BASE;
const OUTPUTS = JSON.parse(process.env.SS_OUTPUTS || '[]');
const PROFILE = process.env.SS_PROFILE;
const ART = process.env.SS_ARTIFACTS || '.';
const SIMULATE_NO_H264 = process.env.SS_SIMULATE_NO_H264 === '1';
const RUNS = [
  { id: 'hlsjs-hls', player: 'hls.js', manifest: 'master.m3u8' },
  { id: 'dashjs-dash', player: 'dash.js', manifest: 'manifest.mpd' },
  { id: 'shaka-hls', player: 'shaka', manifest: 'master.m3u8' },
  { id: 'shaka-dash', player: 'shaka', manifest: 'manifest.mpd' },
];

const summary = { runs: [], storyboards: {}, posters: {} };
const failures = [];
function log(...a) { console.log('[players]', ...a); }
function fail(msg) { failures.push(msg); log('PROBLEM:', msg); }

// A player's fatal error: lib.mjs's waitFor throws it at once instead of
// polling on until its deadline.
class PlayerError extends Error { constructor(m) { super(m); this.fatal = true; } }

const ctx = await chromium.launchPersistentContext(PROFILE, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  viewport: { width: 800, height: 600 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required'],
});

if (SIMULATE_NO_H264) {
  // What a chromium built without proprietary codecs answers: no H.264, no AAC.
  await ctx.addInitScript(() => {
    const NO = /avc[13]\.|mp4a\./i;
    const its = MediaSource.isTypeSupported.bind(MediaSource);
    MediaSource.isTypeSupported = (t) => (NO.test(t) ? false : its(t));
    const asb = MediaSource.prototype.addSourceBuffer;
    MediaSource.prototype.addSourceBuffer = function (t) {
      if (NO.test(t)) throw new DOMException("Failed to execute 'addSourceBuffer' on 'MediaSource': The type provided ('" + t + "') is unsupported. (simulated)", 'NotSupportedError');
      return asb.call(this, t);
    };
    const cpt = HTMLMediaElement.prototype.canPlayType;
    HTMLMediaElement.prototype.canPlayType = function (t) { return NO.test(t) ? '' : cpt.call(this, t); };
    if (navigator.mediaCapabilities) {
      const di = navigator.mediaCapabilities.decodingInfo.bind(navigator.mediaCapabilities);
      navigator.mediaCapabilities.decodingInfo = (c) => ([c.video, c.audio].some((x) => x && NO.test(x.contentType))
        ? Promise.resolve({ supported: false, smooth: false, powerEfficient: false, configuration: c }) : di(c));
    }
  });
}

// every request and response the page makes, by run tag
const requests = [];
const consoleErrors = [];
const consoleWarnings = [];   // reported in the summary, not failures
const page = ctx.pages()[0] || await ctx.newPage();
page.on('console', (m) => {
  if (m.type() === 'warning') consoleWarnings.push(m.text().slice(0, 300));
  if (m.type() === 'error') consoleErrors.push(m.text());
});
page.on('pageerror', (e) => consoleErrors.push('page error: ' + e.message));
page.on('request', (r) => requests.push({ url: r.url(), at: Date.now(), status: null }));
page.on('response', (r) => {
  const q = requests.findLast((x) => x.url === r.url() && x.status === null);
  if (q) q.status = r.status();
});
page.on('requestfailed', (r) => {
  const q = requests.findLast((x) => x.url === r.url() && x.status === null);
  const why = r.failure() ? r.failure().errorText : '?';
  if (q) q.status = 'failed: ' + why;
  // a player aborting its own request (a flushing switch, destroy) is normal
  if (!/ERR_ABORTED/.test(why)) consoleErrors.push('request failed: ' + r.url() + ' ' + why);
});

const status = () => page.evaluate(() => ss.status());
const rel = (u, tag) => { const p = new URL(u).pathname; const pre = '/m/' + tag + '/'; return p.startsWith(pre) ? p.slice(pre.length) : null; };

async function runOne(out, run, parseOnly) {
  const tag = out.name + '-' + run.id;
  const url = BASE + '/m/' + tag + '/' + run.manifest;
  const r = { tag, output: out.name, player: run.player, manifest: run.manifest, problems: [] };
  const mine = (since = 0) => requests.filter((q) => q.at >= since).map((q) => ({ ...q, rel: rel(q.url, tag) })).filter((q) => q.rel !== null);
  const problem = (m) => { r.problems.push(m); fail(tag + ': ' + m); };
  const t0 = Date.now();
  let st = null;
  // fail fast on a fatal player error
  const check = async () => {
    st = await status();
    const fatal = st.errors.filter((e) => e.fatal);
    if (fatal.length) throw new PlayerError('player error: ' + fatal.map((e) => e.source + ': ' + e.msg).join('; '));
    return st;
  };
  log('---', tag, url);
  await page.evaluate(([p, u, o]) => ss.start(p, u, o), [run.player, url, { parseOnly }]);
  try {
    // ---- the manifest: every rendition listed with its size
    await waitFor(run.player + ' to parse ' + run.manifest, async () => (await check()).parsed, 15000);
    const want = out.renditions.map((x) => x.width + 'x' + x.height).sort().join(' ');
    const got = st.levels.map((x) => x.width + 'x' + x.height).sort().join(' ');
    r.levels = st.levels.map((x) => ({ size: x.width + 'x' + x.height, bandwidth: x.bandwidth, codecs: x.codecs }));
    if (got !== want) problem('renditions listed ' + got + ', the output has ' + want);

    if (parseOnly) {
      // no decoder: the player must still fetch and append (to the page's
      // parsing sink) an init and a media segment of video and of audio
      const sunk = (entry) => (st.sinks || []).find((x) => x.entry === entry && x.inits > 0 && x.fragments > 0);
      await waitFor('init and media segments fetched and appended', async () => {
        await check();
        const q = mine().map((x) => x.rel);
        const vid = out.renditions.some((x) => q.includes(x.name + '/init.mp4')) &&
          q.some((x) => /^\d+p\/seg_\d+\.m4s$/.test(x));
        const aud = !out.audio || (q.includes('audio/init.mp4') && q.some((x) => /^audio\/seg_\d+\.m4s$/.test(x)));
        return vid && aud && sunk('avc1') && (!out.audio || sunk('mp4a') || summary.codecs['audio/mp4; codecs="mp4a.40.2"']);
      }, 20000).catch((e) => problem(e.message + '; sinks ' + JSON.stringify(st.sinks)));
      st = await status();
      r.fetched = [...new Set(mine().map((x) => x.rel))].sort();
      r.sinks = st.sinks;
      for (const x of st.sinks) for (const m of x.problems) problem('appending to the ' + x.entry + ' sink: ' + m);
      for (const e of st.errors) problem('player reported: ' + e.source + ': ' + e.msg);
      log(tag, 'parsed and fetched:', r.fetched.join(' '), '| appended:', st.sinks.map((x) => x.entry + ' ' + x.inits + ' init ' + x.fragments + ' fragments ' + JSON.stringify(x.buffered)).join('; '));
      return r;
    }

    // ---- subtitles: ask for them as soon as the player lists them
    if (out.subtitles) {
      await waitFor(run.player + ' to list the subtitle track', () => page.evaluate(() => ss.selectText()), 10000)
        .catch((e) => problem(e.message));
    }

    // ---- play past 3 s
    await page.evaluate(() => ss.play());
    await waitFor('playback past 3 s', async () => (await check()).t >= 3.0, 25000);
    r.startup_s = (Date.now() - t0) / 1000;
    r.firstBuffered = st.firstBuffered;
    if (st.firstBuffered !== null && st.firstBuffered > 0.1) problem('the buffered media starts at ' + st.firstBuffered + ' s, not at 0');
    const heights = out.renditions.map((x) => x.height).sort((a, b) => a - b);
    const initial = st.height;          // what the <video> decodes
    r.initial = initial;
    const playing = out.renditions.find((x) => x.height === initial);
    if (!playing) throw new Error('the <video> is ' + st.width + 'x' + st.height + ', no rendition has that size');
    if (st.current !== initial) problem(run.player + ' reports ' + st.current + ' lines playing, the <video> decodes ' + initial);
    const target = initial === heights[heights.length - 1] ? heights[0] : heights[heights.length - 1];
    const tgt = out.renditions.find((x) => x.height === target);
    r.target = target;
    const q0 = mine().map((x) => x.rel);
    if (!q0.some((x) => x.startsWith(playing.name + '/seg_'))) problem('no segment of the playing rendition ' + playing.name + ' was fetched');

    // ---- force another rendition
    const sw = Date.now();
    const tAt = st.t;
    await page.evaluate((h) => ss.switchTo(h), target);
    await waitFor('the switch to ' + target + 'p (its segments fetched, the player and the <video> at ' + target + ' lines, playing on)', async () => {
      await check();
      const q = mine(sw).map((x) => x.rel);
      return q.includes(tgt.name + '/init.mp4') && q.some((x) => x.startsWith(tgt.name + '/seg_')) &&
        st.height === target && st.current === target && st.t > tAt + 0.5;
    }, 20000);
    r.switch_s = (Date.now() - sw) / 1000;
    r.fetchedAfterSwitch = [...new Set(mine(sw).map((x) => x.rel))].filter((x) => x.endsWith('.m4s') || x.endsWith('.mp4')).sort();

    // ---- the subtitles' cues on the <video>
    if (out.subtitles) {
      const cueTrack = await waitFor('subtitle cues on the <video>', async () =>
        (await check()).cues.find((c) => c.count > 0 && c.kind !== 'metadata'), 10000).catch((e) => { problem(e.message); return null; });
      if (cueTrack) {
        r.subtitles = { kind: cueTrack.kind, language: cueTrack.language, count: cueTrack.count, first: cueTrack.cues[0] };
        const exp = out.subtitles.first;
        const c0 = cueTrack.cues[0];
        if (cueTrack.count !== out.subtitles.count) problem(cueTrack.count + ' subtitle cues, the .vtt has ' + out.subtitles.count);
        if (!c0.text.includes(exp.text) || Math.abs(c0.start - exp.start) > 0.1 || Math.abs(c0.end - exp.end) > 0.1) {
          problem('first subtitle cue ' + JSON.stringify(c0) + ', the .vtt has ' + JSON.stringify(exp));
        }
      }
    }

    // ---- the end
    const dur = st.duration;
    if (!(Math.abs(dur - out.duration) < 0.1)) problem('the player says the duration is ' + dur + ' s, the output ' + out.duration + ' s');
    const before = { frames: st.frames, audioBytes: st.audioBytes };
    await page.evaluate((t) => ss.seek(t), out.duration - 1.0);
    // (a player that stands still in the last second with every track
    // buffered to the end, paused or its MediaSource open, is helped once,
    // and the run says so: r.nudged, printed by the test; players.html
    // ss.endIfBuffered)
    let lastT = -1, since = Date.now();
    await waitFor('playback to end after a seek to the last second', async () => {
      const s = await check();
      if (s.ended) return true;
      if (s.t !== lastT) {
        lastT = s.t;
        since = Date.now();
      } else if (!r.nudged && Date.now() - since > 3000 && s.duration - s.t <= 1.1) {
        r.nudged = await page.evaluate(() => ss.endIfBuffered());
        if (r.nudged) log(tag, 'NOTE:', r.nudged);
      }
      return false;
    }, 15000);
    r.ended_at = st.t;
    // the last second really had video (and audio) in it, not just a duration
    r.lastSecond = { frames: st.frames - before.frames, audioBytes: st.audioBytes - before.audioBytes };
    if (r.lastSecond.frames < out.fps * 0.5) problem('only ' + r.lastSecond.frames + ' video frames in the last second (' + out.fps + ' fps)');
    if (out.audio && !(r.lastSecond.audioBytes > 0)) problem('no audio decoded in the last second');
    r.heights = st.heights;
    r.decoded = { frames: st.frames, dropped: st.dropped, videoBytes: st.videoBytes, audioBytes: st.audioBytes, shaka: st.shaka };
    if (!(st.frames > 0 && st.videoBytes > 0)) problem('no decoded video frames reported');
    if (out.audio && !(st.audioBytes > 0)) problem('no decoded audio reported');
    r.nonFatal = st.errors.map((e) => e.source + ': ' + e.msg);
    // a non-fatal error is still an error (stalls under load are not errors: hls.js reports them as bufferStalledError)
    for (const e of st.errors.filter((x) => !/bufferStalledError/.test(x.msg))) problem('player reported: ' + e.source + ': ' + e.msg);
    r.wall_s = (Date.now() - t0) / 1000;
    log(tag, 'ok:', JSON.stringify({ initial: r.initial, target: r.target, heights: r.heights, startup_s: r.startup_s,
      switch_s: r.switch_s, ended_at: r.ended_at, subtitles: r.subtitles && r.subtitles.count, wall_s: r.wall_s }));
  } catch (e) {
    let s = null;
    try { s = await status(); } catch (x) { /* page gone */ }
    problem((e.message || String(e)) + (s ? '\n    state: ' + JSON.stringify({ t: s.t, paused: s.paused, height: s.height, current: s.current, buffered: s.buffered, readyState: s.readyState, frames: s.frames, dropped: s.dropped, errors: s.errors, events: s.events.slice(-12),
      msState: s.msState, mse: s.mse, sinks: s.sinks.map((x) => ({ type: x.type, entry: x.entry, buffered: x.buffered, problems: x.problems })) }) : ''));
    try { await page.screenshot({ path: path.join(ART, 'failure-' + tag + '.png') }); } catch (x) { /* gone */ }
  } finally {
    r.requests = mine().map((x) => x.rel + (x.status === 200 || x.status === 206 ? '' : ' -> ' + x.status));
    for (const q of mine()) {
      if (typeof q.status === 'number' && q.status >= 400) problem('HTTP ' + q.status + ' for ' + q.rel);
    }
    await page.evaluate(() => ss.stop()).catch((e) => problem('stop: ' + e.message));
  }
  return r;
}

try {
  await page.goto(BASE + '/players.html');
  await page.waitForFunction(() => window.ssReady === true, null, { timeout: 15000 });
  const types = ['video/mp4; codecs="avc1.64001f"', 'audio/mp4; codecs="mp4a.40.2"'];
  for (const o of OUTPUTS) {
    for (const r of o.renditions) {
      for (const c of r.codecs.split(',')) {
        const t = (c.startsWith('mp4a') ? 'audio' : 'video') + '/mp4; codecs="' + c.trim() + '"';
        if (!types.includes(t)) types.push(t);
      }
    }
  }
  const env = await page.evaluate((t) => ss.env(t), types);
  summary.versions = env.versions;
  summary.codecs = env.supported;
  summary.h264 = Object.values(env.supported).every(Boolean);
  log('versions', JSON.stringify(env.versions), '| MediaSource.isTypeSupported:', JSON.stringify(env.supported));
  if (!env.shakaSupported) fail('shaka.Player.isBrowserSupported() is false');
  const parseOnly = !summary.h264;
  if (parseOnly) {
    const missing = Object.entries(env.supported).filter(([, v]) => !v).map(([k]) => k);
    console.log('\n' + '!'.repeat(78) + '\n!!! THIS CHROMIUM CANNOT DECODE ' + missing.join(', ') +
      '\n!!! (' + env.userAgent + ')' +
      '\n!!! The players are only checked to parse the manifests and fetch init and media' +
      '\n!!! segments (appended to a parsing sink, not decoded); playback, switching and' +
      '\n!!! subtitles are NOT checked in the browser.' +
      '\n!!! Decoding is verified with ffmpeg by the checker instead.\n' + '!'.repeat(78) + '\n');
    summary.playback = 'parse-only: chromium cannot decode ' + missing.join(', ');
  }

  for (const out of OUTPUTS) {
    for (const run of RUNS) summary.runs.push(await runOne(out, run, parseOnly));
    // ---- thumbnails: chromium's WebVTT parser on the storyboard, the sprite, the poster
    if (out.thumbs) {
      const base = BASE + '/m/' + out.name + '-thumbs/thumbs/';
      const sb = await page.evaluate((u) => ss.storyboard(u), base + 'storyboard.vtt');
      summary.storyboards[out.name] = { count: sb.count, first: sb.first, lastEnd: sb.lastEnd, sprites: sb.sprites };
      if (!sb.loaded) fail(out.name + ': chromium did not load thumbs/storyboard.vtt as a WebVTT track');
      else if (sb.count !== out.thumbs.cues) fail(out.name + ': chromium parsed ' + sb.count + ' storyboard cues, the file has ' + out.thumbs.cues);
      for (const p of sb.problems) fail(out.name + ': storyboard: ' + p);
      if (sb.lastEnd !== undefined && Math.abs(sb.lastEnd - out.duration) > 1.0) fail(out.name + ': the storyboard ends at ' + sb.lastEnd + ' s, the video at ' + out.duration + ' s');
      const poster = await page.evaluate((u) => ss.image(u), base + 'poster.jpg');
      summary.posters[out.name] = poster;
      if (!poster.ok || poster.width < 16) fail(out.name + ': thumbs/poster.jpg does not decode in chromium');
      log(out.name, 'storyboard:', sb.count, 'cues, sprite', JSON.stringify(Object.values(sb.sprites)), 'poster', JSON.stringify(poster));
    }
  }
} catch (e) {
  fail('the browser test stopped: ' + (e.stack || e));
  try { await page.screenshot({ path: path.join(ART, 'failure.png') }); } catch (x) { /* gone */ }
}
if (consoleErrors.length) fail('console errors:\n  ' + consoleErrors.join('\n  '));
summary.console_errors = consoleErrors;
summary.console_warnings = consoleWarnings;
if (consoleWarnings.length) log(consoleWarnings.length + ' console warnings:\n  ' + [...new Set(consoleWarnings)].slice(0, 20).join('\n  '));
summary.problems = failures;
await ctx.close();
try { fs.writeFileSync(path.join(ART, 'players-summary.json'), JSON.stringify(summary, null, 2)); } catch (e) { /* no dir */ }
console.log('SUMMARY ' + JSON.stringify(summary));
process.exit(failures.length ? 1 : 0);
