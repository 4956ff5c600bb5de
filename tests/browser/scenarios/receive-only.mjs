// Receive-only participants (issue 10, item 1): a viewer page that joins without camera and
// microphone (it never offers) is there first; then an H264 publisher (its page prefers H264
// 42e01f through setCodecPreferences) and a VP8 publisher join at once. The viewer must decode
// both videos and receive both audios; its `join` declared what it decodes (`receive.codecs`,
// from RTCRtpReceiver.getCapabilities), and every track was announced playable.

import { H264_ONLY } from '../lib/codecs.mjs';
import { decodedByName, openParticipants } from '../lib/call.mjs';
import { waitFor } from '../lib/client.mjs';

/** getUserMedia fails as when both devices are blocked: the page joins to watch. */
const NO_DEVICES = `(() => {
  navigator.mediaDevices.getUserMedia = async () => {
    throw new DOMException('Permission denied', 'NotAllowedError');
  };
})();`;

/** The mime types of the video streams `p` decodes. */
function decodedVideoCodecs(p) {
  return p.page.evaluate(async () => {
    const report = await window.chorus.call.negotiator.pc.getStats();
    const mimes = {};
    report.forEach((s) => { if (s.type === 'codec') mimes[s.id] = s.mimeType; });
    const out = [];
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video' && (s.framesDecoded || 0) > 0) out.push(mimes[s.codecId]);
    });
    return out.sort();
  });
}

export async function run(ctx) {
  const room = 'webinar';
  const [alice, bob, val] = await openParticipants(ctx, [
    { name: 'Alice', init: H264_ONLY },
    { name: 'Bob' },
    { name: 'Val', init: NO_DEVICES },
  ]);
  const joins = [];
  val.page.on('websocket', (ws) => ws.on('framesent', (frame) => {
    try {
      const message = JSON.parse(frame.payload);
      if (message.type === 'join') joins.push(message);
    } catch {
      // not JSON: not ours to read
    }
  }));
  await val.join(ctx.base, room, { camera: false });
  await Promise.all([alice.join(ctx.base, room), bob.join(ctx.base, room)]);
  const people = [alice, bob, val];
  const t0 = Date.now();
  await waitFor('Val to decode Alice\'s and Bob\'s video and receive their audio', async () => {
    const decoded = await decodedByName(val, people);
    return ['Alice', 'Bob'].every((n) => decoded[n] && decoded[n].video > 15 && decoded[n].audioPackets > 50);
  }, 25000);
  const decodingMs = Date.now() - t0;
  ctx.log(`Val decodes both publishers after ${decodingMs} ms`);
  const announced = await val.page.evaluate(() => [...window.chorus.call.remote.values()]
    .map((t) => ({ peerId: t.peerId, kind: t.kind, playable: t.playable, reason: t.reason || null })));
  return {
    decodingMs,
    decoded: await decodedByName(val, people),
    codecs: await decodedVideoCodecs(val),
    declared: joins.length ? (joins[0].receive ? joins[0].receive.codecs.map((c) => c.mimeType) : []) : null,
    announced,
    negotiation: (await val.snapshot()).negotiation,
    pageErrors: Object.fromEntries(people.map((p) => [p.name, p.errors])),
  };
}
