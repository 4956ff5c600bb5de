// A full room: 14 synthetic participants (the Rust test client) publish audio and video; a
// browser page joins as the 15th, shows a tile for each, then shares its screen. Its re-offer
// repeats every receiving m-line (29 of them), each with the codecs it negotiated (the server
// offers every codec the page can receive), ~80 KB in all: within the room-sized
// --max-sdp-bytes, and the screen must get published.

import { openParticipants } from '../lib/call.mjs';
import { waitFor } from '../lib/client.mjs';

export async function run(ctx) {
  const expected = Number(process.env.CHORUS_EXPECTED_OTHERS || '14');
  const [page] = await openParticipants(ctx, [{ name: 'Browser' }]);
  await page.join(ctx.base, 'big-room');
  await waitFor(`${expected} remote tiles`, async () => (await page.tiles()).filter((t) => !t.self).length === expected, 20000);
  await page.page.evaluate(() => {
    window.offerSizes = [];
    const signaling = window.chorus.call.signaling;
    const send = signaling.send.bind(signaling);
    signaling.send = (message) => {
      if (message.type === 'offer') window.offerSizes.push(JSON.stringify(message).length);
      return send(message);
    };
  });
  await page.click('#btn-screen');
  await waitFor('the screen track published', async () => page.page.evaluate(() => {
    const screen = window.chorus.call.media.entries.screen;
    return Boolean(screen && screen.trackId);
  }), 20000);
  const snapshot = await page.snapshot();
  return {
    remoteTiles: (await page.tiles()).filter((t) => !t.self).length,
    offerSizes: await page.page.evaluate(() => window.offerSizes),
    receivingMlines: await page.page.evaluate(() => window.chorus.call.negotiator.pc.getTransceivers().filter((t) => t.direction === 'recvonly').length),
    state: snapshot.state,
    selfId: snapshot.selfId,
    pageErrors: { Browser: page.errors },
  };
}
