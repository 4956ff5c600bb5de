// Helpers shared by the call scenarios: open several participants (Chromium pages share one
// browser, Firefox pages another), join them to one room, wait until every page decodes every
// other page's video, and sample the RTP counters of each page until they have grown.

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
  let missing = [];
  try {
    await waitFor('every page to decode every other page', async () => {
      missing = [];
      for (const p of people) {
        const decoded = await decodedByName(p, people);
        for (const other of people) {
          if (other === p) continue;
          const got = decoded[other.name];
          if (!got || got.video <= 0) missing.push(`${p.name} <- ${other.name} ${JSON.stringify(got || null)}`);
        }
      }
      return missing.length === 0;
    }, timeoutMs);
  } catch (error) {
    throw new Error(`${error.message}; not decoding: ${missing.join('; ')}`);
  }
}

/**
 * Each page's counters from a first sample until every page has received at least `frames`
 * more video frames and `audioPackets` more audio packets from every other page, or until
 * `timeoutMs` (then the last sample is returned as it is, for the assertions to judge):
 * {page: {publisher: {framesDecoded: [first, last], audioPacketsReceived: [first, last]}}}.
 */
export async function sampleGrowth(people, { frames = 15, audioPackets = 50, timeoutMs = 10000 } = {}) {
  const first = await Promise.all(people.map((p) => decodedByName(p, people)));
  const grown = (second) => people.every((p, i) => people.every((other) => {
    if (other === p) return true;
    const a = first[i][other.name] || { video: 0, audioPackets: 0 };
    const b = second[i][other.name] || { video: 0, audioPackets: 0 };
    return b.video >= a.video + frames && b.audioPackets >= a.audioPackets + audioPackets;
  }));
  let second;
  const deadline = Date.now() + timeoutMs;
  do {
    await sleep(250);
    second = await Promise.all(people.map((p) => decodedByName(p, people)));
  } while (!grown(second) && Date.now() < deadline);
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
