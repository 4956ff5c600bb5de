// Test 1: three Chromium pages join one room; each shows two remote tiles whose decoded
// frames keep growing, and receives the others' audio packets. Along the way: the speaking
// highlight lights up on remote tiles (each fake microphone plays a steady tone, which the
// server's active-speaker detector hears as speech; Chromium's own beep is too short to count)
// and the connection-quality meters settle on a grade (each watched until it happens, within a
// bound).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { toneClip } from '../lib/browsers.mjs';
import { joinAll, remoteTileNames, sampleGrowth, waitAllDecoding } from '../lib/call.mjs';
import { sleep } from '../lib/client.mjs';

/**
 * Watches the remote tiles of every page until each page has seen every other one speak and
 * every quality meter shows a settled grade (good or fair), or for at most `timeoutMs`: who was
 * seen speaking, and the last quality of each tile.
 */
async function watchTiles(people, timeoutMs) {
  const spoke = Object.fromEntries(people.map((p) => [p.name, new Set()]));
  const quality = {};
  const settled = () => people.every((p) => spoke[p.name].size === people.length - 1
    && Object.keys(quality[p.name] || {}).length === people.length - 1
    && Object.values(quality[p.name]).every((q) => q === 'good' || q === 'fair'));
  const end = Date.now() + timeoutMs;
  while (!settled() && Date.now() < end) {
    for (const p of people) {
      const tiles = (await p.tiles()).filter((t) => !t.self);
      for (const t of tiles) if (t.speaking) spoke[p.name].add(t.name);
      quality[p.name] = Object.fromEntries(tiles.map((t) => [t.name, t.quality]));
    }
    await sleep(100);
  }
  return { spoke: Object.fromEntries(Object.entries(spoke).map(([k, v]) => [k, [...v].sort()])), quality };
}

export async function run(ctx) {
  const specs = [{ name: 'Alice' }, { name: 'Bob' }, { name: 'Carol' }];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-tone-'));
  ctx.keep({ close: async () => fs.rmSync(dir, { recursive: true, force: true }) });
  const people = await joinAll(ctx, specs, 'three-way', { fakeAudio: toneClip(dir) });
  const t0 = Date.now();
  await waitAllDecoding(people, 20000);
  const allDecodingMs = Date.now() - t0;
  ctx.log(`every page decodes every other page after ${allDecodingMs} ms`);
  const [growth, watched] = await Promise.all([sampleGrowth(people), watchTiles(people, 10000)]);
  const tiles = {};
  for (const p of people) tiles[p.name] = await remoteTileNames(p);
  return { allDecodingMs, tiles, growth, ...watched, pageErrors: Object.fromEntries(people.map((p) => [p.name, p.errors])) };
}
