// ICE restart without a video stall: Alice and Bob decode each other; first Alice (a publisher
// leg), then Bob (the receiving leg) restarts ICE (`restartIce` through the web client's
// negotiator). Bob's decoded frames of Alice are sampled every 50 ms; the longest time they did
// not grow, after each restart, is the stall.

import { decodedByName, joinAll, waitAllDecoding } from '../lib/call.mjs';
import { waitFor } from '../lib/client.mjs';

const WATCH_MS = 6000;
const SAMPLE_MS = 50;

/** Longest time (ms) Bob's decoded frames of Alice stood still during `WATCH_MS` after `act`. */
async function stallAround(bob, people, act) {
  const frames = async () => ((await decodedByName(bob, people)).Alice || {}).video || 0;
  await act();
  const start = Date.now();
  let last = await frames();
  let lastGrowth = start;
  let longest = 0;
  while (Date.now() - start < WATCH_MS) {
    await new Promise((r) => setTimeout(r, SAMPLE_MS));
    const now = await frames();
    if (now > last) {
      longest = Math.max(longest, Date.now() - lastGrowth);
      lastGrowth = Date.now();
      last = now;
    }
  }
  return Math.max(longest, Date.now() - lastGrowth);
}

async function restartIce(p) {
  await p.page.evaluate(() => window.chorus.call.negotiator.requestOffer({ iceRestart: true }));
}

async function ufragOf(p) {
  return p.page.evaluate(() => {
    const sdp = window.chorus.call.negotiator.pc.localDescription?.sdp || '';
    return (sdp.match(/a=ice-ufrag:(\S+)/) || [])[1] || null;
  });
}

export async function run(ctx) {
  const people = await joinAll(ctx, [{ name: 'Alice' }, { name: 'Bob' }], 'ice-restart');
  const [alice, bob] = people;
  await waitAllDecoding(people, 20000);
  // Let the streams settle past their first seconds (bitrate ramp-up, first keyframes).
  await new Promise((r) => setTimeout(r, 2000));
  const baselineStallMs = await stallAround(bob, people, async () => {});
  const aliceUfrag = await ufragOf(alice);
  const publisherStallMs = await stallAround(bob, people, () => restartIce(alice));
  await waitFor('Alice restarted ICE', async () => (await ufragOf(alice)) !== aliceUfrag, 5000);
  const bobUfrag = await ufragOf(bob);
  const subscriberStallMs = await stallAround(bob, people, () => restartIce(bob));
  await waitFor('Bob restarted ICE', async () => (await ufragOf(bob)) !== bobUfrag, 5000);
  const snapshot = await bob.snapshot();
  return {
    baselineStallMs,
    publisherStallMs,
    subscriberStallMs,
    mediaState: snapshot.mediaState,
    pageErrors: Object.fromEntries(people.map((p) => [p.name, p.errors])),
  };
}
