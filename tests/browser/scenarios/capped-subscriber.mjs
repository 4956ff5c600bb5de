// Simulcast under a bandwidth cap (issue 13 item 5): a Chromium publisher sends its camera in
// simulcast; one Chromium subscriber shares the server's network namespace (no cap) and another
// sits in a second namespace behind a veth pair whose server end is shaped with a token bucket
// (`tc qdisc ... tbf`). The scenario measures, every half second, each subscriber's decoded
// frames, received bitrate and frame size, then caps the link, waits for the capped subscriber
// to settle on a lower layer, and lifts the cap again. The Rust test (tests/browser_simulcast.rs)
// makes the namespaces, starts the server inside one and judges the figures.
//
// Environment (set by the Rust test): CHORUS_CAP_SERVER_NS (the server's namespace; the
// publisher and the free subscriber run there), CHORUS_CAP_CLIENT_NS (the capped subscriber),
// CHORUS_CAP_DEV (the veth end in the server's namespace), CHORUS_CAP_KBIT (the cap).

import { execFileSync } from 'node:child_process';
import { launchChromium } from '../lib/browsers.mjs';
import { Participant, sleep, waitFor } from '../lib/client.mjs';

/** getUserMedia fails as when both devices are blocked: the subscribers join to watch. */
const NO_DEVICES = `(() => {
  navigator.mediaDevices.getUserMedia = async () => {
    throw new DOMException('Permission denied', 'NotAllowedError');
  };
})();`;

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (this scenario runs from tests/browser_simulcast.rs)`);
  return value;
}

/** Inbound camera counters of a subscriber: {bytes, frames, width}. */
async function inbound(p) {
  const stats = await p.mediaStats();
  const cam = stats && stats.inbound.find((t) => t.kind === 'video' && t.source === 'camera');
  return cam ? { bytes: cam.bytesReceived || 0, frames: cam.framesDecoded || 0, width: cam.frameWidth || 0 } : null;
}

/** The publisher's outbound video streams, one per simulcast layer: [{rid, bytes, width, active}]. */
function layersSent(p) {
  return p.page.evaluate(async () => {
    const report = await window.chorus.call.negotiator.pc.getStats();
    const out = [];
    report.forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video') {
        out.push({ rid: s.rid || null, bytes: s.bytesSent || 0, width: s.frameWidth || 0, height: s.frameHeight || 0, active: s.active !== false });
      }
    });
    return out.sort((a, b) => (a.rid || '').localeCompare(b.rid || ''));
  });
}

/**
 * The size a subscriber shows the publisher's camera at, as the web client tells the server
 * (`video-size`: device pixels, rounded up to 16): {width, height}, or null before it shows it.
 */
function tileSize(p) {
  return p.page.evaluate(() => {
    const ratio = window.devicePixelRatio || 1;
    const video = [...document.querySelectorAll('#grid figure.tile')]
      .filter((t) => t.dataset.self !== 'true' && t.dataset.hasVideo === 'true')
      .map((t) => t.querySelector('video'))
      .find((v) => v && v.clientWidth > 0);
    if (!video) return null;
    const up = (px) => Math.ceil((px * ratio) / 16) * 16;
    return { width: up(video.clientWidth), height: up(video.clientHeight) };
  });
}

/** The publisher's layers in one line: `q 320 on, h 640 on, f 1280 paused`. */
function layerText(layers) {
  return layers.map((l) => `${l.rid} ${l.width} ${l.active ? 'on' : 'paused'}`).join(', ');
}

/** Both subscribers' widths in the last sample: `free 1280, capped 640`. */
function widths(samples) {
  const last = samples[samples.length - 1];
  return last ? `free ${last.free.width}, capped ${last.capped.width}` : 'no samples';
}

/** Rates between two inbound samples `seconds` apart: {kbps, fps, width}. */
function rates(a, b, seconds) {
  return {
    kbps: Math.round(((b.bytes - a.bytes) * 8) / seconds / 1000),
    fps: Math.round(((b.frames - a.frames) / seconds) * 10) / 10,
    width: b.width,
  };
}

/**
 * Samples both subscribers every 500 ms for up to `limitMs`, until `done(samples)` holds;
 * returns the samples: {atMs, free: {kbps, fps, width}, capped: {...}}.
 */
async function sample(free, capped, t0, limitMs, done) {
  const samples = [];
  let previous = { at: Date.now(), free: await inbound(free), capped: await inbound(capped) };
  const start = Date.now();
  while (Date.now() - start < limitMs) {
    await sleep(500);
    const now = { at: Date.now(), free: await inbound(free), capped: await inbound(capped) };
    const seconds = (now.at - previous.at) / 1000;
    samples.push({
      atMs: now.at - t0,
      free: rates(previous.free, now.free, seconds),
      capped: rates(previous.capped, now.capped, seconds),
    });
    previous = now;
    if (await done(samples)) break;
  }
  return samples;
}

/** Mean of `field` of `who` over the samples of the last `ms`. */
function recentMean(samples, who, field, ms) {
  if (!samples.length) return 0;
  const end = samples[samples.length - 1].atMs;
  const recent = samples.filter((s) => s.atMs > end - ms);
  return Math.round((recent.reduce((sum, s) => sum + s[who][field], 0) / recent.length) * 10) / 10;
}

/** True when the last `n` samples all satisfy `pred`. */
function lastHold(samples, n, pred) {
  return samples.length >= n && samples.slice(-n).every(pred);
}

export async function run(ctx) {
  const serverNs = required('CHORUS_CAP_SERVER_NS');
  const clientNs = required('CHORUS_CAP_CLIENT_NS');
  const dev = required('CHORUS_CAP_DEV');
  const capKbit = Number(required('CHORUS_CAP_KBIT'));
  const tc = (...args) => execFileSync('ip', ['netns', 'exec', serverNs, 'tc', 'qdisc', ...args, 'dev', dev, 'root', ...(args[0] === 'del' ? [] : ['tbf', 'rate', `${capKbit}kbit`, 'burst', '20kb', 'latency', '100ms'])]);

  const people = [];
  for (const [name, netns] of [['Publisher', serverNs], ['Free', serverNs], ['Capped', clientNs]]) {
    const browser = ctx.keep(await launchChromium({ netns, secureOrigin: ctx.base }));
    const page = await browser.newPage();
    if (name !== 'Publisher') await page.addInitScript(NO_DEVICES);
    people.push(new Participant(page, name, 'chromium'));
  }
  const [publisher, free, capped] = people;
  await publisher.join(ctx.base, 'capped');
  await Promise.all([free.join(ctx.base, 'capped', { camera: false }), capped.join(ctx.base, 'capped', { camera: false })]);
  await waitFor('both subscribers to decode the publisher', async () => {
    const [a, b] = [await inbound(free), await inbound(capped)];
    return a && b && a.frames > 0 && b.frames > 0;
  }, 30000);
  const t0 = Date.now();

  // 1. No cap: both subscribers should climb to the layer their tile needs (the server picks
  // the narrowest layer that covers the tile's size, `video-size`). Chromium starts with `q`
  // alone and adds layers as its own estimate ramps up (`f` often never starts on a busy
  // 2-core machine, and the server pauses it while no tile needs it): wait until it encodes at
  // least two and both subscribers get the one their tiles need.
  const needed = async () => {
    const encoded = (await layersSent(publisher)).filter((l) => l.width > 0).sort((a, b) => a.width - b.width);
    const [a, b] = [await tileSize(free), await tileSize(capped)];
    if (encoded.length < 2 || !a || !b) return Infinity;
    const [w, h] = [Math.max(a.width, b.width), Math.max(a.height, b.height)];
    return (encoded.find((l) => l.width >= w && l.height >= h) || encoded[encoded.length - 1]).width;
  };
  const before = await sample(free, capped, t0, 40000, async (s) => {
    if (s.length < 16) return false;
    const full = await needed();
    return lastHold(s, 4, (x) => x.capped.width === full && x.free.width === full);
  });
  const topWidth = await needed();
  const tiles = { free: await tileSize(free), capped: await tileSize(capped) };
  const layersBefore = await layersSent(publisher);
  ctx.log(`before the cap: tiles ${JSON.stringify(tiles)} need width ${topWidth}; ${widths(before)}; capped ${recentMean(before, 'capped', 'fps', 3000)} fps; layers ${layerText(layersBefore)}`);

  // 2. Cap the capped subscriber's link; wait until it settles below the top layer.
  tc('replace');
  const cappedAt = Date.now() - t0;
  const during = await sample(free, capped, t0, 30000, (s) => lastHold(s, 16, (x) => x.capped.width > 0 && x.capped.width < topWidth));
  const below = during.findIndex((x, i) => during.slice(i).every((y) => y.capped.width > 0 && y.capped.width < topWidth));
  const adaptedAtMs = below >= 0 ? during[below].atMs - cappedAt : null;
  const layersDuring = await layersSent(publisher);
  ctx.log(`capped at ${capKbit} kbit/s: adapted after ${adaptedAtMs} ms, ${recentMean(during, 'capped', 'fps', 5000)} fps; ${widths(during)}; layers ${layerText(layersDuring)}`);

  const qdisc = execFileSync('ip', ['netns', 'exec', serverNs, 'tc', '-s', 'qdisc', 'show', 'dev', dev]).toString();
  ctx.log(`the cap's queue: ${qdisc.replace(/\s+/g, ' ')}`);

  // 3. Lift the cap; the subscriber should climb back to the top layer.
  tc('del');
  const liftedAt = Date.now() - t0;
  const after = await sample(free, capped, t0, 36000, (s) => lastHold(s, 4, (x) => x.capped.width === topWidth));
  const back = after.findIndex((x) => x.capped.width === topWidth);
  const recoveredAtMs = back >= 0 ? after[back].atMs - liftedAt : null;
  const layersAfter = await layersSent(publisher);
  ctx.log(`cap lifted: back on the layer its tile needs after ${recoveredAtMs} ms; ${widths(after)}; layers ${layerText(layersAfter)}`);

  const summary = (samples) => ({
    free: { kbps: recentMean(samples, 'free', 'kbps', 5000), fps: recentMean(samples, 'free', 'fps', 5000), width: samples.length ? samples[samples.length - 1].free.width : 0 },
    capped: { kbps: recentMean(samples, 'capped', 'kbps', 5000), fps: recentMean(samples, 'capped', 'fps', 5000), width: samples.length ? samples[samples.length - 1].capped.width : 0 },
  });
  return {
    capKbit,
    topWidth,
    tiles,
    adaptedAtMs,
    recoveredAtMs,
    before: summary(before),
    during: summary(during),
    after: summary(after),
    // Every half-second window of the capped subscriber while capped: its decoded frame rate
    // (a freeze is 0).
    cappedFramesPerSample: during.map((s) => s.capped.fps),
    layersBefore,
    layersDuring,
    layersAfter,
    samples: { before, during, after },
  };
}
