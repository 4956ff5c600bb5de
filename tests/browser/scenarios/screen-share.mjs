// Test 5: screen share. A page shares its screen (Chromium's fake capture, picked without a
// dialog); the others get an extra tile, source `screen`, whose frames are decoded; stopping
// the share removes it, and the camera tile stays throughout.

import { decodedByName, joinAll, waitAllDecoding } from '../lib/call.mjs';
import { sampleUntil, waitFor } from '../lib/client.mjs';

async function screenTiles(p) {
  return (await p.tiles()).filter((t) => t.source === 'screen');
}

export async function run(ctx) {
  const people = await joinAll(ctx, [{ name: 'Alice' }, { name: 'Bob' }, { name: 'Carol' }], 'screen');
  const [alice, bob, carol] = people;
  await waitAllDecoding(people, 20000);
  const t0 = Date.now();
  await alice.click('#btn-screen');
  await waitFor('Alice sharing', async () => (await alice.snapshot()).people[0].sharing, 10000);
  const sharedAfterMs = Date.now() - t0;
  const observers = [bob, carol];
  const shown = {};
  await waitFor('a screen tile on the others', async () => {
    for (const o of observers) {
      if (shown[o.name] === undefined && (await screenTiles(o)).some((t) => t.name === 'Alice’s screen' && t.hasVideo)) {
        shown[o.name] = Date.now() - t0;
      }
    }
    return Object.keys(shown).length === observers.length;
  }, 10000);
  await waitFor('screen frames decoded on Bob', async () => ((await decodedByName(bob, people)).Alice || {}).screen > 0, 10000);
  const screenFrames = async () => ((await decodedByName(bob, people)).Alice || {}).screen || 0;
  const s0 = await screenFrames();
  const { value: s1 } = await sampleUntil(screenFrames, (s) => s > s0, 10000, { what: 'Bob to keep decoding the screen' });
  const whileSharing = {
    bob: (await bob.tiles()).map((t) => ({ name: t.name, source: t.source, hasVideo: t.hasVideo, width: t.videoWidth })),
    alice: (await alice.tiles()).map((t) => ({ name: t.name, source: t.source })),
    button: await alice.page.evaluate(() => document.getElementById('btn-screen').textContent.trim()),
  };
  await alice.click('#btn-screen');
  const t1 = Date.now();
  await waitFor('the screen tile gone on the others', async () => {
    for (const o of observers) if ((await screenTiles(o)).length) return false;
    return true;
  }, 10000);
  const removedAfterMs = Date.now() - t1;
  const after = Object.fromEntries(await Promise.all(observers.map(async (o) => [o.name, (await o.tiles()).map((t) => `${t.name}/${t.source}`)])));
  return {
    sharedAfterMs,
    shownMs: shown,
    screenFramesDecoded: [s0, s1],
    whileSharing,
    removedAfterMs,
    after,
    pageErrors: Object.fromEntries(people.map((p) => [p.name, p.errors])),
  };
}
