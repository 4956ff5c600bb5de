// Test 2: a Chromium publisher's outbound video bitrate (one encoding, simulcast off), with the SFU's RTCP feedback (TWCC,
// receiver reports) driving its congestion control, reaches 500 kbps within 15 s of joining. A
// second page subscribes, so the video really goes through the SFU; its inbound bitrate, the
// publisher's bandwidth estimate and encoder target are reported too. The camera plays noise,
// so the encoder is limited by congestion control and not by how simple the picture is.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openParticipants } from '../lib/call.mjs';
import { noiseClip } from '../lib/browsers.mjs';
import { sleep } from '../lib/client.mjs';

async function estimate(p) {
  return p.page.evaluate(async () => {
    const report = await window.chorus.call.negotiator.pc.getStats();
    const out = { availableOutgoingKbps: null, targetKbps: null };
    report.forEach((s) => {
      if (s.type === 'candidate-pair' && s.nominated && s.availableOutgoingBitrate) {
        out.availableOutgoingKbps = Math.round(s.availableOutgoingBitrate / 1000);
      }
      if (s.type === 'outbound-rtp' && s.kind === 'video' && s.targetBitrate) out.targetKbps = Math.round(s.targetBitrate / 1000);
    });
    return out;
  });
}

async function cameraBytes(p, direction) {
  const stats = await p.mediaStats();
  if (direction === 'out') {
    const cam = stats.outbound.find((t) => t.source === 'camera');
    return cam ? { bytes: cam.bytesSent || 0, width: cam.frameWidth || 0, limit: cam.qualityLimitationReason || null } : null;
  }
  const cam = stats.inbound.find((t) => t.kind === 'video' && t.source === 'camera');
  return cam ? { bytes: cam.bytesReceived || 0, width: cam.frameWidth || 0 } : null;
}

export async function run(ctx) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-clip-'));
  ctx.keep({ close: async () => fs.rmSync(dir, { recursive: true, force: true }) });
  const fakeVideo = noiseClip(dir);
  // One encoding: this measures the publisher's congestion control through the SFU's feedback;
  // with simulcast the subscriber would get the one layer its tile needs, not the whole rate.
  const oneEncoding = "window.localStorage.setItem('chorus.simulcast', 'off');";
  const [publisher, subscriber] = await openParticipants(ctx, [{ name: 'Publisher', init: oneEncoding }, { name: 'Subscriber' }], { fakeVideo });
  await publisher.join(ctx.base, 'bitrate');
  // The clock starts when the publisher is in the room; the subscriber arrives meanwhile.
  const t0 = Date.now();
  let subscriberJoinedMs = null;
  const subscribing = subscriber.join(ctx.base, 'bitrate').then(() => {
    subscriberJoinedMs = Date.now() - t0;
  });
  const samples = [];
  let previous = null;
  let reachedAtMs = null;
  // 1 s windows for 15 s after the subscriber joined (the publisher started sending earlier).
  while (Date.now() - t0 < 15000) {
    const now = Date.now();
    const out = await cameraBytes(publisher, 'out');
    const inb = subscriberJoinedMs === null ? null : await cameraBytes(subscriber, 'in');
    if (previous && out) {
      const seconds = (now - previous.at) / 1000;
      const sample = {
        atMs: now - t0,
        outKbps: Math.round(((out.bytes - previous.out) * 8) / seconds / 1000),
        inKbps: inb && previous.in !== null ? Math.round(((inb.bytes - previous.in) * 8) / seconds / 1000) : null,
        subscribed: subscriberJoinedMs !== null,
        width: out.width,
        limitedBy: out.limit,
        ...(await estimate(publisher)),
      };
      samples.push(sample);
      if (reachedAtMs === null && sample.outKbps >= 500) reachedAtMs = sample.atMs;
    }
    previous = { at: now, out: out ? out.bytes : 0, in: inb ? inb.bytes : null };
    const received = samples.filter((x) => (x.inKbps || 0) >= 500).length;
    if (reachedAtMs !== null && received >= 2) break;
    await sleep(1000);
  }
  await subscribing;
  const maxOutKbps = Math.max(0, ...samples.map((s) => s.outKbps));
  const maxInKbps = Math.max(0, ...samples.map((s) => s.inKbps || 0));
  ctx.log(`publisher reached 500 kbps at ${reachedAtMs} ms; max out ${maxOutKbps} kbps, max in ${maxInKbps} kbps`);
  return { reachedAtMs, subscriberJoinedMs, maxOutKbps, maxInKbps, samples };
}
