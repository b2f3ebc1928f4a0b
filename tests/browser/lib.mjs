// Helpers the browser tests share (dashboard.test.mjs, console.test.mjs,
// players.mjs, tracks.mjs): assertions, polling with a deadline, a small
// API client, and chromium.
import { chromium } from 'playwright-core';

export function assert(c, msg) { if (!c) throw new Error('assertion failed: ' + msg); }
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Poll fn until it returns something truthy (returned), or throw after
// timeoutMs with the last error fn threw; an error with .fatal set (a
// player's fatal error) is thrown at once.
export async function waitFor(what, fn, timeoutMs = 30000, every = 100) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      if (e && e.fatal) throw e;
      last = e;
    }
    await sleep(every);
  }
  throw new Error('timed out after ' + timeoutMs / 1000 + ' s waiting for ' + what +
                  (last ? ' (' + last.message + ')' : ''));
}

// apiCall(method, path, body) against the coordinator at base with token;
// throws on any status >= 300.
export function apiClient(base, token) {
  return async function apiCall(method, p, body) {
    const r = await fetch(base + p, {
      method,
      headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' },
      body: body ? JSON.stringify(body) : undefined,
    });
    const j = await r.json();
    if (r.status >= 300) throw new Error(method + ' ' + p + ' -> ' + r.status + ' ' + JSON.stringify(j));
    return j;
  };
}

// Debian's chromium, headless, with a fresh profile folder.
export function launch(profile, viewport, extraArgs = []) {
  return chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ...extraArgs],
  });
}
