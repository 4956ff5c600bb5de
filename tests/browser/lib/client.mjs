// Driving the Chorus web client like a person — open the page, type a name, click Join, press
// the controls — and reading what it shows: tiles and their indicators from the DOM, RTP
// counters from `window.chorus.mediaStats()`. Every wait is bounded, and waits on a condition
// (sampleUntil, untilStill, holdsFor) rather than a fixed sleep.

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `fn(arg)` in the page until it returns a truthy value; throws after `timeoutMs`. */
export async function waitInPage(page, what, fn, arg, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await page.evaluate(fn, arg);
      if (last) return last;
    } catch (error) {
      last = `evaluate failed: ${error.message}`;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await sleep(150);
  }
}

/** Polls an async check in node until truthy; throws after `timeoutMs`. */
export async function waitFor(what, check, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await check();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await sleep(200);
  }
}

/**
 * Samples `fn()` every `everyMs` until `pred(value)` holds; resolves `{value, ms}` (ms: when it
 * first held). Throws after `timeoutMs` with the last value, naming `what`.
 */
export async function sampleUntil(fn, pred, timeoutMs, { what = 'a condition', everyMs = 150 } = {}) {
  const t0 = Date.now();
  let value;
  for (;;) {
    value = await fn();
    if (pred(value)) return { value, ms: Date.now() - t0 };
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(value)})`);
    await sleep(everyMs);
  }
}

/**
 * Samples `fn()` until its value (compared as JSON) has not changed for `quietMs`; resolves
 * `{value, ms}` (ms: when it last changed). Throws if it is still changing after `timeoutMs`.
 */
export async function untilStill(fn, quietMs, timeoutMs, { what = 'a value to settle', everyMs = 150 } = {}) {
  const t0 = Date.now();
  let value = await fn();
  let changedAt = t0;
  for (;;) {
    if (Date.now() - changedAt >= quietMs) return { value, ms: changedAt - t0 };
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what} still changing after ${timeoutMs} ms (last: ${JSON.stringify(value)})`);
    await sleep(everyMs);
    const next = await fn();
    if (JSON.stringify(next) !== JSON.stringify(value)) changedAt = Date.now();
    value = next;
  }
}

/**
 * Samples `fn()` every `everyMs` for `ms` and tells whether `pred(value)` held at every sample:
 * `{held, samples, first, last, broken}` (broken: the first value for which it did not). For
 * properties that must stay true ("nothing arrives", "no reconnect"), after a condition wait
 * has shown the thing they are about is settled. It takes at least `minSamples` samples even
 * when each `fn()` is slow (a loaded machine: a stats call can take a second), up to
 * `ms + 10 s` in all.
 */
export async function holdsFor(fn, pred, ms, { everyMs = 150, minSamples = 4 } = {}) {
  const end = Date.now() + ms;
  const cap = end + 10_000;
  const first = await fn();
  let last = first;
  let samples = 1;
  let held = Boolean(pred(first));
  let broken = held ? null : first;
  while (held && (Date.now() < end || (samples < minSamples && Date.now() < cap))) {
    await sleep(everyMs);
    last = await fn();
    samples += 1;
    if (!pred(last)) {
      held = false;
      broken = last;
    }
  }
  return { held, samples, first, last, broken };
}

export class Participant {
  constructor(page, name, kind) {
    this.page = page;
    this.name = name;
    this.kind = kind;
    this.errors = [];
    page.on('pageerror', (error) => this.errors.push(String(error && error.message ? error.message : error)));
    page.on('console', (message) => {
      const type = typeof message.type === 'function' ? message.type() : message.type;
      if (type === 'error') this.errors.push(`console: ${message.text()}`);
    });
  }

  /** Opens the lobby of `room` and waits until the devices are settled. */
  async openLobby(base, room, { camera = true } = {}) {
    const url = `${base}/?room=${encodeURIComponent(room)}`;
    await this.page.goto(url, { timeout: 20000 });
    await waitInPage(this.page, 'the lobby', () => {
      const lobby = document.getElementById('lobby');
      const join = document.getElementById('join-button');
      return lobby && !lobby.hidden && join && /Join/.test(join.textContent);
    }, null, 15000);
    if (camera) {
      // The devices open asynchronously; wait for the preview to hold a camera track.
      await waitInPage(this.page, 'the camera preview', () => {
        const v = document.getElementById('preview-video');
        return Boolean(v && v.srcObject && v.srcObject.getVideoTracks().length);
      }, null, 15000);
    } else {
      await waitInPage(this.page, 'the lobby note', () => !document.getElementById('media-note').hidden, null, 15000);
    }
  }

  /** What the lobby tells about the devices: {note, kind, joinLabel}. */
  lobbyNote() {
    return this.page.evaluate(() => ({
      note: document.getElementById('media-note').hidden ? '' : document.getElementById('media-note').textContent,
      kind: document.getElementById('media-note').dataset.kind || '',
      joinLabel: document.getElementById('join-button').textContent,
    }));
  }

  /** The full-screen notice, if shown: {title, text, actions}. */
  notice() {
    return this.page.evaluate(() => {
      const notice = document.getElementById('notice');
      if (notice.hidden) return null;
      return {
        title: document.getElementById('notice-title').textContent,
        text: document.getElementById('notice-text').textContent,
        actions: [...document.querySelectorAll('#notice-actions button')].map((b) => b.textContent),
      };
    });
  }

  /** The banner over the call, if shown. */
  banner() {
    return this.page.evaluate(() => {
      const banner = document.getElementById('banner');
      return banner.hidden ? null : banner.querySelector('.banner-text').textContent;
    });
  }

  /** Opens the client at `base` (with `?room=`), fills the name and joins. */
  async join(base, room, { camera = true, expect = 'connected', keyboard = false } = {}) {
    await this.openLobby(base, room, { camera });
    if (keyboard) {
      // As a keyboard user: the name field has focus; type, then Enter submits the form.
      await this.page.focus('#name-input');
      await this.page.keyboard.type(this.name);
      await this.page.keyboard.press('Enter');
    } else {
      await this.page.evaluate((name) => {
        const input = document.getElementById('name-input');
        input.value = name;
        input.dispatchEvent(new Event('input', { bubbles: true }));
      }, this.name);
      await this.page.click('#join-button');
    }
    if (expect === 'connected') {
      await waitInPage(this.page, `${this.name} joined`, () => window.chorus.snapshot().state === 'connected', null, 15000);
    }
    return this;
  }

  snapshot() {
    return this.page.evaluate(() => window.chorus.snapshot());
  }

  mediaStats() {
    return this.page.evaluate(() => window.chorus.mediaStats());
  }

  click(selector) {
    return this.page.click(selector);
  }

  /** What the tiles on the page show, from the DOM. */
  tiles() {
    return this.page.evaluate(() => [...document.querySelectorAll('#grid .tile')].map((t) => ({
      key: t.dataset.key,
      peerId: t.dataset.peerId,
      source: t.dataset.source,
      self: t.dataset.self === 'true',
      name: t.querySelector('.tile-name').textContent,
      audioMuted: t.dataset.audioMuted === 'true',
      videoMuted: t.dataset.videoMuted === 'true',
      hasVideo: t.dataset.hasVideo === 'true',
      micIndicatorVisible: !t.querySelector('.mic-state').hidden,
      avatarVisible: getComputedStyle(t.querySelector('.avatar')).display !== 'none',
      videoWidth: t.querySelector('video').videoWidth,
      speaking: t.dataset.speaking === 'true',
      quality: t.dataset.quality || null,
    })));
  }

  /** Remote tiles whose video is being decoded: peers → framesDecoded. */
  async decodedVideoByPeer() {
    const stats = await this.mediaStats();
    const out = {};
    for (const t of (stats && stats.inbound) || []) {
      if (t.kind === 'video') out[`${t.peerId}:${t.source}`] = t.framesDecoded || 0;
    }
    return out;
  }
}

/** Chat messages shown on the page: [{from, text}] (the panel need not be open). */
export function chatShown(page) {
  return page.evaluate(() => [...document.querySelectorAll('#chat-list .msg')].map((m) => ({
    from: m.querySelector('.msg-from').textContent,
    text: m.querySelector('.msg-text').textContent,
  })));
}

/** The unread badge on the Chat button: its number, or 0 when hidden. */
export function unreadBadge(page) {
  return page.evaluate(() => {
    const badge = document.getElementById('chat-badge');
    return badge.hidden ? 0 : Number(badge.textContent);
  });
}

/** Names in the participant list, in order. */
export function peopleShown(page) {
  return page.evaluate(() => [...document.querySelectorAll('#people-list .person-name')].map((n) => n.textContent));
}
