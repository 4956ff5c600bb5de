// Issue 13 item 4: two Chromium pages whose fake microphones play a steady tone (a WAV file,
// not the built-in beep) join one room; each page is told by the server (`active-speakers`)
// that the other one speaks, its tile of the other shows the speaking ring, and the audio it
// receives carries the audio-level extension. Reports, per page, whom the server named, when
// it first named the other, and the highest level Chromium read from the forwarded packets.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { toneClip } from '../lib/browsers.mjs';
import { openParticipants } from '../lib/call.mjs';
import { sleep } from '../lib/client.mjs';

/** Names the page's server list of speakers holds (its own included). */
async function namedSpeakers(p) {
  const snapshot = await p.snapshot();
  const names = new Map((snapshot.people || []).map((x) => [x.peerId, x.name]));
  return (snapshot.speakers || []).map((id) => names.get(id) || id);
}

/**
 * The audio level Chromium reports for the other page's audio (RTCRtpSynchronizationSource
 * `audioLevel`, which Chromium takes from the RFC 6464 extension of the packets it receives,
 * so it exists only when the server forwards the extension), or null.
 */
function forwardedLevel(p) {
  return p.page.evaluate(() => {
    const call = window.chorus.call;
    if (!call || !call.negotiator) return null;
    for (const t of call.remote.values()) {
      const receiver = t.kind === 'audio' ? call.negotiator.receiverOf(t.trackId) : null;
      const sources = receiver ? receiver.getSynchronizationSources() : [];
      for (const s of sources) if (typeof s.audioLevel === 'number') return s.audioLevel;
    }
    return null;
  });
}

export async function run(ctx) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-tone-'));
  ctx.keep({ close: async () => fs.rmSync(dir, { recursive: true, force: true }) });
  const fakeAudio = toneClip(dir);
  const people = await openParticipants(ctx, [{ name: 'Alice' }, { name: 'Bob' }], { fakeAudio });
  await Promise.all(people.map((p) => p.join(ctx.base, 'speakers')));
  const t0 = Date.now();
  const heard = Object.fromEntries(people.map((p) => [p.name, []]));
  const firstMs = {};
  const ring = {};
  const other = (p) => people.find((q) => q !== p).name;
  const level = {};
  const done = () => people.every((p) => firstMs[p.name] !== undefined && ring[p.name] && level[p.name] > 0);
  while (!done() && Date.now() - t0 < 20000) {
    for (const p of people) {
      const names = await namedSpeakers(p);
      for (const n of names) if (!heard[p.name].includes(n)) heard[p.name].push(n);
      if (names.includes(other(p)) && firstMs[p.name] === undefined) firstMs[p.name] = Date.now() - t0;
      const tiles = (await p.tiles()).filter((t) => !t.self);
      ring[p.name] = ring[p.name] || tiles.some((t) => t.speaking);
      const l = await forwardedLevel(p);
      if (l !== null) level[p.name] = Math.max(level[p.name] || 0, l);
    }
    await sleep(100);
  }
  return { heard, firstMs, ring, level, pageErrors: Object.fromEntries(people.map((p) => [p.name, p.errors])) };
}
