// Helpers shared by the call scenarios: open several participants (Chromium pages share one
// browser, Firefox pages another), join them to one room, wait until every page decodes every
// other page's video, and sample the RTP counters of each page twice.

import { launchChromium, launchFirefox } from './browsers.mjs';
import { Participant, sleep, waitFor } from './client.mjs';

/** Opens a page per spec (`{name, browser}`) without joining; `chromiumOptions` as launchChromium's. */
export async function openParticipants(ctx, specs, chromiumOptions = {}) {
  const browsers = {};
  const people = [];
  for (const spec of specs) {
    const kind = spec.browser || 'chromium';
    if (!browsers[kind]) {
      browsers[kind] = ctx.keep(kind === 'firefox' ? await launchFirefox() : await launchChromium(chromiumOptions));
    }
    const page = await browsers[kind].newPage();
    if (spec.init) {
      // Runs before the client's scripts on every load of this page (e.g. to take a device away).
      if (kind === 'firefox') await page.evaluateOnNewDocument(spec.init);
      else await page.addInitScript(spec.init);
    }
    people.push(new Participant(page, spec.name, kind));
  }
  return people;
}

/** Opens and joins everyone to `room` (all at once, as when a meeting starts). */
export async function joinAll(ctx, specs, room, chromiumOptions = {}) {
  const people = await openParticipants(ctx, specs, chromiumOptions);
  await Promise.all(people.map(async (p) => {
    await p.join(ctx.base, room);
    ctx.log(`${p.name} (${p.kind}) joined ${room}`);
  }));
  return people;
}

/** Inbound video framesDecoded by publisher name, on `p`. */
export async function decodedByName(p, people) {
  const snapshot = await p.snapshot();
  const stats = await p.mediaStats();
  const names = new Map(snapshot.people.map((x) => [x.peerId, x.name]));
  const out = {};
  for (const t of stats.inbound) {
    const name = names.get(t.peerId) || t.peerId;
    const entry = out[name] || (out[name] = { video: 0, audioPackets: 0, videoPackets: 0, screen: 0 });
    if (t.kind === 'video' && t.source === 'screen') entry.screen = t.framesDecoded || 0;
    else if (t.kind === 'video') {
      entry.video = t.framesDecoded || 0;
      entry.videoPackets = t.packetsReceived || 0;
    } else entry.audioPackets = t.packetsReceived || 0;
  }
  void people;
  return out;
}

/** Waits until every page decodes video from every other page. */
export async function waitAllDecoding(people, timeoutMs = 20000) {
  await waitFor('every page to decode every other page', async () => {
    for (const p of people) {
      const decoded = await decodedByName(p, people);
      for (const other of people) {
        if (other === p) continue;
        if (!decoded[other.name] || decoded[other.name].video <= 0) return false;
      }
    }
    return true;
  }, timeoutMs);
}

/** Two samples of each page's counters, `gapMs` apart: {page: {publisher: {video:[a,b], audioPackets:[a,b]}}}. */
export async function sampleGrowth(people, gapMs = 3000) {
  const first = await Promise.all(people.map((p) => decodedByName(p, people)));
  await sleep(gapMs);
  const second = await Promise.all(people.map((p) => decodedByName(p, people)));
  const out = {};
  people.forEach((p, i) => {
    out[p.name] = {};
    for (const [name, a] of Object.entries(first[i])) {
      const b = second[i][name] || {};
      out[p.name][name] = {
        framesDecoded: [a.video, b.video || 0],
        audioPacketsReceived: [a.audioPackets, b.audioPackets || 0],
      };
    }
  });
  return out;
}

/** The names on the remote camera tiles of a page (from the DOM). */
export async function remoteTileNames(p) {
  const tiles = await p.tiles();
  return tiles.filter((t) => !t.self && t.source === 'camera').map((t) => t.name).sort();
}
