// The media path dies under a page (its PeerConnection is closed behind the client's back, as
// when a network drops it): the server notices the silence, rebuilds its side and sends
// `error media-failed`; the page says so, builds a new PeerConnection, offers its tracks
// again, and both pages decode each other once more. Signaling stays up throughout.

import { decodedByName, joinAll, waitAllDecoding } from '../lib/call.mjs';
import { waitFor } from '../lib/client.mjs';

export async function run(ctx) {
  const people = await joinAll(ctx, [{ name: 'Alice' }, { name: 'Bob' }], 'media-failed');
  const [alice, bob] = people;
  await waitAllDecoding(people, 20000);
  const selfBefore = (await alice.snapshot()).selfId;
  await alice.page.evaluate(() => {
    window.mediaFailedSeen = [];
    const call = window.chorus.call;
    call.addEventListener('notice', (e) => window.mediaFailedSeen.push(e.detail.text));
    call.negotiator.pc.close();
  });
  const t0 = Date.now();
  const notice = await waitFor('the media-failed notice', async () => {
    const seen = await alice.page.evaluate(() => window.mediaFailedSeen);
    return seen.find((t) => /media connection/i.test(t)) || null;
  }, 30000);
  const noticeAfterMs = Date.now() - t0;
  await waitFor('Bob decoding Alice again', async () => ((await decodedByName(bob, people)).Alice || {}).video > 0, 20000);
  await waitFor('Alice decoding Bob again', async () => ((await decodedByName(alice, people)).Bob || {}).video > 0, 20000);
  const restoredAfterMs = Date.now() - t0;
  const snapshot = await alice.snapshot();
  return {
    notice,
    noticeAfterMs,
    restoredAfterMs,
    sameSession: snapshot.selfId === selfBefore,
    state: snapshot.state,
    mediaState: snapshot.mediaState,
    pageErrors: Object.fromEntries(people.map((p) => [p.name, p.errors])),
  };
}
