// Test 4: microphone and camera toggles (mouse and keyboard; the toggling page also joined by
// keyboard: name typed, Enter) show on the other pages within
// 2 s — the muted-microphone indicator, the avatar in place of the video — while the server
// stops forwarding the muted tracks (a counter that was growing settles, then holds still);
// unmuting brings them back; Leave removes the tile.

import { decodedByName, openParticipants, waitAllDecoding } from '../lib/call.mjs';
import { holdsFor, sampleUntil, untilStill, waitFor } from '../lib/client.mjs';

/** Milliseconds until `check(tile of Alice)` holds on every observer page. */
async function timeUntil(observers, subject, what, check, timeoutMs = 5000) {
  const t0 = Date.now();
  const times = {};
  await waitFor(what, async () => {
    for (const o of observers) {
      if (times[o.name] !== undefined) continue;
      const tiles = await o.tiles();
      const tile = tiles.find((t) => t.name === subject && t.source === 'camera');
      if (check(tile)) times[o.name] = Date.now() - t0;
    }
    return Object.keys(times).length === observers.length;
  }, timeoutMs);
  return Math.max(...Object.values(times));
}

async function ownButtons(p) {
  return p.page.evaluate(() => ({
    mic: document.getElementById('btn-mic').dataset.off,
    micLabel: document.getElementById('btn-mic').textContent.trim(),
    cam: document.getElementById('btn-cam').dataset.off,
    camLabel: document.getElementById('btn-cam').textContent.trim(),
  }));
}

async function packetsFrom(observer, people, name) {
  const decoded = await decodedByName(observer, people);
  return decoded[name] || { video: 0, audioPackets: 0, videoPackets: 0 };
}

/** How much `counter()` grows: waits (bounded) until it has grown at all. */
async function grows(counter, what) {
  const base = await counter();
  const { value } = await sampleUntil(counter, (v) => v > base, 5000, { what });
  return value - base;
}

/**
 * A counter that must stop: waits until it has been still for 1 s (what was in flight has
 * arrived), then watches it for 1.5 s more. `growth` is what it grew by while watched.
 */
async function stops(counter, what) {
  const settled = await untilStill(counter, 1000, 8000, { what });
  const hold = await holdsFor(counter, (v) => v === settled.value, 1500);
  return { settledMs: settled.ms, samples: hold.samples, growth: (hold.held ? hold.last : hold.broken) - settled.value };
}

export async function run(ctx) {
  const people = await openParticipants(ctx, [{ name: 'Alice' }, { name: 'Bob' }, { name: 'Carol' }]);
  const [alice, bob, carol] = people;
  // Alice uses the keyboard only, from the lobby on.
  await Promise.all([alice.join(ctx.base, 'controls', { keyboard: true }), bob.join(ctx.base, 'controls'), carol.join(ctx.base, 'controls')]);
  const observers = [bob, carol];
  await waitAllDecoding(people, 20000);
  const result = { ms: {} };
  const audioFromAlice = async () => (await packetsFrom(bob, people, 'Alice')).audioPackets;
  const videoFromAlice = async () => (await packetsFrom(bob, people, 'Alice')).videoPackets;

  result.audioPacketsBeforeMute = await grows(audioFromAlice, 'Alice\'s audio on Bob before the mute');
  await alice.click('#btn-mic');
  result.ms.micMutedShown = await timeUntil(observers, 'Alice', 'mic muted on the others', (t) => t && t.micIndicatorVisible && t.audioMuted);
  result.buttonsWhileMuted = await ownButtons(alice);
  result.audioWhileMuted = await stops(audioFromAlice, 'Alice\'s muted audio on Bob');
  result.audioPacketsWhileMuted = result.audioWhileMuted.growth;

  result.videoPacketsBeforeOff = await grows(videoFromAlice, 'Alice\'s video on Bob before the camera goes off');
  await alice.click('#btn-cam');
  result.ms.cameraOffShown = await timeUntil(observers, 'Alice', 'camera off on the others', (t) => t && !t.hasVideo && t.avatarVisible);
  result.buttonsWhileOff = await ownButtons(alice);
  result.videoWhileOff = await stops(videoFromAlice, 'Alice\'s stopped video on Bob');
  result.videoPacketsWhileOff = result.videoWhileOff.growth;

  // Back on, by keyboard: the M shortcut, then Space on the focused camera button.
  await alice.page.evaluate(() => document.activeElement && document.activeElement.blur());
  await alice.page.keyboard.press('m');
  result.ms.micUnmutedShown = await timeUntil(observers, 'Alice', 'mic unmuted on the others', (t) => t && !t.micIndicatorVisible && !t.audioMuted);
  await alice.page.focus('#btn-cam');
  await alice.page.keyboard.press('Space');
  result.ms.cameraOnShown = await timeUntil(observers, 'Alice', 'camera on for the others', (t) => t && t.hasVideo);
  result.buttonsAfter = await ownButtons(alice);
  const f0 = await packetsFrom(bob, people, 'Alice');
  const { value: f1 } = await sampleUntil(() => packetsFrom(bob, people, 'Alice'),
    (f) => f.video >= f0.video + 10 && f.audioPackets > f0.audioPackets + 20, 10000,
    { what: 'Alice\'s video and audio to flow again on Bob' });
  result.framesAfterCameraOn = [f0.video, f1.video];
  result.audioPacketsAfterUnmute = f1.audioPackets - f0.audioPackets;

  await alice.click('#btn-leave');
  result.ms.leaveShown = await timeUntil(observers, 'Alice', 'Alice gone on the others', (t) => !t);
  result.leftNotice = await alice.page.evaluate(() => ({
    visible: !document.getElementById('notice').hidden,
    title: document.getElementById('notice-title').textContent,
  }));
  result.tilesAfterLeave = Object.fromEntries(await Promise.all(observers.map(async (o) => [o.name, (await o.tiles()).map((t) => t.name)])));
  result.pageErrors = Object.fromEntries(people.map((p) => [p.name, p.errors]));
  return result;
}
