// Issue 13 item 4: two Chromium pages whose fake microphones play a steady tone (a WAV file,
// not the built-in beep) join one room; each page is told by the server (`active-speakers`)
// that the other one speaks, and its tile of the other shows the speaking ring. Reports, per
// page, whom the server named and when it first named the other.

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
  const done = () => people.every((p) => firstMs[p.name] !== undefined && ring[p.name]);
  while (!done() && Date.now() - t0 < 20000) {
    for (const p of people) {
      const names = await namedSpeakers(p);
      for (const n of names) if (!heard[p.name].includes(n)) heard[p.name].push(n);
      if (names.includes(other(p)) && firstMs[p.name] === undefined) firstMs[p.name] = Date.now() - t0;
      const tiles = (await p.tiles()).filter((t) => !t.self);
      ring[p.name] = ring[p.name] || tiles.some((t) => t.speaking);
    }
    await sleep(100);
  }
  return { heard, firstMs, ring, pageErrors: Object.fromEntries(people.map((p) => [p.name, p.errors])) };
}
