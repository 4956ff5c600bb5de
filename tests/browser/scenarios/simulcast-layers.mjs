// Simulcast layers per subscriber and dynacast in real browsers (issue 13 items 1 and 3): a
// publisher (Chromium or Firefox, CHORUS_PUBLISHER_BROWSER; VP8, or H264 with
// CHORUS_PUBLISHER_CODEC=h264) sends its camera through the web
// client, which publishes it in simulcast; two Chromium subscribers watch it, one in a small
// window and one in a large one, and the web client tells the server each tile's size. The
// scenario measures what each subscriber decodes (frame width, frames per second), which
// layers the server counts legs on, and what the publisher's encoder sends per rid; then it
// shrinks the large window too, so nobody needs the layer it was getting (the server should
// pause that layer at the publisher, and the publisher stop sending it), and enlarges it again
// (the layer should come back). The Rust test (tests/browser_layers.rs) judges the figures.

import { launchChromium, launchFirefox } from '../lib/browsers.mjs';
import { Participant, sleep, waitFor } from '../lib/client.mjs';
import { H264_ONLY } from '../lib/codecs.mjs';

const SMALL = { width: 480, height: 270 };
const LARGE = { width: 1280, height: 720 };

/** getUserMedia fails as when both devices are blocked: the subscribers join to watch. */
const NO_DEVICES = `(() => {
  navigator.mediaDevices.getUserMedia = async () => {
    throw new DOMException('Permission denied', 'NotAllowedError');
  };
})();`;

/** Inbound camera counters of a subscriber: {bytes, frames, width}. */
async function inbound(p) {
  const stats = await p.mediaStats();
  const cam = stats && stats.inbound.find((t) => t.kind === 'video' && t.source === 'camera');
  return cam ? { bytes: cam.bytesReceived || 0, frames: cam.framesDecoded || 0, width: cam.frameWidth || 0 } : null;
}

/** The publisher's outbound video streams by rid: {rid: {bytes, width}}. */
function sent(p) {
  return p.page.evaluate(async () => {
    const report = await window.chorus.call.negotiator.pc.getStats();
    const out = {};
    report.forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video') {
        out[s.rid || '-'] = { bytes: s.bytesSent || 0, width: s.frameWidth || 0, limit: s.qualityLimitationReason || '', target: s.targetBitrate || 0 };
      }
    });
    return out;
  });
}

/** Bytes each rid sent over `ms`: {rid: bytes}. */
async function sentOver(p, ms) {
  const a = await sent(p);
  await sleep(ms);
  const b = await sent(p);
  return Object.fromEntries(Object.keys(b).map((rid) => [rid, b[rid].bytes - ((a[rid] && a[rid].bytes) || 0)]));
}

/** The server's simulcast gauges: {legs: {layer: n}, paused}. */
async function serverGauges(base) {
  const text = await (await fetch(`${base}/metrics`)).text();
  const legs = {};
  let paused = 0;
  for (const line of text.split('\n')) {
    const leg = line.match(/^chorus_simulcast_legs\{layer="(\d+)"\} (\S+)/);
    if (leg) legs[leg[1]] = Number(leg[2]);
    const p = line.match(/^chorus_simulcast_paused_layers (\S+)/);
    if (p) paused = Number(p[1]);
  }
  return { legs, paused };
}

/** Frames per second and width of both subscribers over one second: {small, large}. */
async function rates(small, large) {
  const [a1, b1] = [await inbound(small), await inbound(large)];
  await sleep(1000);
  const [a2, b2] = [await inbound(small), await inbound(large)];
  const one = (x, y) => ({ fps: y.frames - x.frames, width: y.width, kbps: Math.round(((y.bytes - x.bytes) * 8) / 1000) });
  return { small: one(a1, a2), large: one(b1, b2) };
}

async function openPage(ctx, browserKind, name, viewport, init) {
  const browser = ctx.keep(browserKind === 'firefox' ? await launchFirefox() : await launchChromium());
  const page = await browser.newPage();
  if (init) await page.addInitScript(init);
  if (browserKind !== 'firefox') await page.setViewportSize(viewport);
  return new Participant(page, name, browserKind);
}

/** Samples until `pred(rates)` holds for `n` seconds in a row, up to `limitMs`: {ok, atMs, last}. */
async function until(small, large, n, limitMs, pred) {
  const start = Date.now();
  let run = 0;
  let last = null;
  while (Date.now() - start < limitMs) {
    last = await rates(small, large);
    run = pred(last) ? run + 1 : 0;
    if (run >= n) return { ok: true, atMs: Date.now() - start, last };
  }
  return { ok: false, atMs: null, last };
}

export async function run(ctx) {
  const publisherKind = process.env.CHORUS_PUBLISHER_BROWSER || 'chromium';
  const codec = process.env.CHORUS_PUBLISHER_CODEC || 'vp8';
  const publisher = await openPage(ctx, publisherKind, 'Publisher', LARGE, codec === 'h264' ? H264_ONLY : null);
  const small = await openPage(ctx, 'chromium', 'Small', SMALL, NO_DEVICES);
  const large = await openPage(ctx, 'chromium', 'Large', LARGE, NO_DEVICES);
  await publisher.join(ctx.base, 'layers');
  await Promise.all([small.join(ctx.base, 'layers', { camera: false }), large.join(ctx.base, 'layers', { camera: false })]);
  await waitFor('both subscribers to decode the publisher', async () => {
    const [a, b] = [await inbound(small), await inbound(large)];
    return a && b && a.frames > 0 && b.frames > 0;
  }, 30000);
  const userAgent = await publisher.page.evaluate(() => navigator.userAgent);
  const sentCodecs = await publisher.page.evaluate(async () => {
    const report = await window.chorus.call.negotiator.pc.getStats();
    const codecs = {};
    report.forEach((s) => { if (s.type === 'codec') codecs[s.id] = s.mimeType; });
    const out = new Set();
    report.forEach((s) => { if (s.type === 'outbound-rtp' && s.kind === 'video' && codecs[s.codecId]) out.add(codecs[s.codecId]); });
    return [...out];
  });

  // 1. Each subscriber settles on the layer its window needs: the large one on a wider layer.
  // (75 s: under load Chromium's encoder may take long to start a layer above `q`.)
  const split = await until(small, large, 3, 75000, (r) => r.small.fps > 0 && r.large.fps > 0 && r.large.width > r.small.width);
  const gaugesSplit = await serverGauges(ctx.base);
  const sentSplit = await sentOver(publisher, 2000);
  ctx.log(`split: ${JSON.stringify(split.last)} legs ${JSON.stringify(gaugesSplit.legs)} sent ${JSON.stringify(sentSplit)}`);
  ctx.log(`publisher encodings: ${JSON.stringify(await sent(publisher))}`);

  // 2. The large window shrinks: nobody needs its layer any more; the server pauses it (a
  // layer the encoder never got to, such as `f` on a busy machine, may be paused already).
  const largeWidth = split.last.large.width;
  const rids = Object.keys(sentSplit).filter((rid) => rid !== '-').sort();
  const publisherLayers = await sent(publisher);
  const largeRid = rids.find((rid) => publisherLayers[rid].width === largeWidth) || null;
  await large.page.setViewportSize(SMALL);
  const shrunkAt = Date.now();
  let pausedAfterMs = null;
  while (largeRid && Date.now() - shrunkAt < 20000) {
    if ((await sentOver(publisher, 500))[largeRid] < 500) {
      pausedAfterMs = Date.now() - shrunkAt;
      break;
    }
  }
  const sentPaused = await sentOver(publisher, 2000);
  const whilePaused = await rates(small, large);
  const gaugesPaused = await serverGauges(ctx.base);
  ctx.log(`paused after ${pausedAfterMs} ms: sent ${JSON.stringify(sentPaused)}, subscribers ${JSON.stringify(whilePaused)}`);

  // 3. The large window is large again: its layer resumes and reaches it.
  await large.page.setViewportSize(LARGE);
  const grown = await until(small, large, 2, 30000, (r) => r.large.fps > 0 && r.large.width >= largeWidth);
  const sentResumed = await sentOver(publisher, 2000);
  const gaugesResumed = await serverGauges(ctx.base);
  ctx.log(`resumed: ${JSON.stringify(grown)} sent ${JSON.stringify(sentResumed)}`);

  return {
    publisherKind,
    userAgent,
    sentCodecs,
    rids,
    largeRid,
    split,
    gaugesSplit,
    sentSplit,
    pausedAfterMs,
    gaugesPaused,
    sentPaused,
    whilePaused,
    grown,
    sentResumed,
    gaugesResumed,
    pageErrors: Object.fromEntries([publisher, small, large].map((p) => [p.name, p.errors])),
  };
}
