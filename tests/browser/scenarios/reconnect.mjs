// Reconnecting: two pages in a call; the server restarts (the test shuts it down once it sees
// the file `in-call` in $CHORUS_SIGNAL_DIR, then starts a new one on the same address). Both
// pages say the connection was lost and that they retry, come back by themselves (new
// session, new media connection) and decode each other again. The chat history of the old
// room is gone with the old server; the page keeps what it had shown until the rejoin.

import fs from 'node:fs';
import path from 'node:path';
import { decodedByName, joinAll, waitAllDecoding } from '../lib/call.mjs';
import { waitFor } from '../lib/client.mjs';

const REFUSED = /^console: WebSocket connection to .* failed/;

export async function run(ctx) {
  const signalDir = process.env.CHORUS_SIGNAL_DIR;
  if (!signalDir) throw new Error('CHORUS_SIGNAL_DIR is not set');
  const people = await joinAll(ctx, [{ name: 'Alice' }, { name: 'Bob' }], 'reconnect');
  await waitAllDecoding(people, 20000);
  const before = Object.fromEntries(await Promise.all(people.map(async (p) => [p.name, (await p.snapshot()).selfId])));
  fs.writeFileSync(path.join(signalDir, 'in-call'), 'yes');
  const t0 = Date.now();
  const seen = {};
  await waitFor('both pages reconnecting', async () => {
    for (const p of people) {
      if (seen[p.name]) continue;
      const snapshot = await p.snapshot();
      const banner = await p.banner();
      if (snapshot.state === 'reconnecting' && banner) seen[p.name] = { banner, reason: snapshot.detail.reason, atMs: Date.now() - t0 };
    }
    return Object.keys(seen).length === people.length;
  }, 15000);
  await waitFor('both pages connected again', async () => {
    const states = await Promise.all(people.map(async (p) => (await p.snapshot()).state));
    return states.every((s) => s === 'connected');
  }, 30000);
  const reconnectedMs = Date.now() - t0;
  await waitAllDecoding(people, 20000);
  const decodingAgainMs = Date.now() - t0;
  const after = Object.fromEntries(await Promise.all(people.map(async (p) => [p.name, (await p.snapshot()).selfId])));
  const decoded = Object.fromEntries(await Promise.all(people.map(async (p) => [p.name, await decodedByName(p, people)])));
  const banners = Object.fromEntries(await Promise.all(people.map(async (p) => [p.name, await p.banner()])));
  return {
    reconnecting: seen,
    reconnectedMs,
    decodingAgainMs,
    peerIds: { before, after },
    decoded,
    bannersAfter: banners,
    // While the server is down, the browser itself logs each refused connection attempt.
    refusedAttemptsLogged: Object.fromEntries(people.map((p) => [p.name, p.errors.filter((e) => REFUSED.test(e)).length])),
    pageErrors: Object.fromEntries(people.map((p) => [p.name, p.errors.filter((e) => !REFUSED.test(e))])),
  };
}
