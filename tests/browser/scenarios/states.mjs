// The states a person must understand, each shown as a readable message: camera and
// microphone blocked (joins to watch and chat), no camera (joins with the microphone only; the
// others see an avatar), room full, removed by an operator (kicked), room closed (ended).
// The server runs with --max-participants 2 and an admin key (env CHORUS_ADMIN_KEY).

import { openParticipants, remoteTileNames } from '../lib/call.mjs';
import { holdsFor, waitFor, waitInPage } from '../lib/client.mjs';

/** Replaces getUserMedia so that it fails as a browser does for `failing` kinds. */
function denyScript(failing, errorName, message) {
  return `(() => {
    const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
    navigator.mediaDevices.getUserMedia = async (constraints) => {
      const wants = ${JSON.stringify(failing)}.filter((kind) => constraints && constraints[kind]);
      if (wants.length) throw new DOMException(${JSON.stringify(message)}, ${JSON.stringify(errorName)});
      return original(constraints);
    };
  })();`;
}

async function admin(ctx, method, path) {
  const response = await fetch(`${ctx.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${process.env.CHORUS_ADMIN_KEY}` },
  });
  if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status} ${await response.text()}`);
  return response.json().catch(() => ({}));
}

export async function run(ctx) {
  const room = 'states';
  const [dan, nora, finn] = await openParticipants(ctx, [
    { name: 'Dan', init: denyScript(['audio', 'video'], 'NotAllowedError', 'Permission denied') },
    { name: 'Nora', init: denyScript(['video'], 'NotFoundError', 'Requested device not found') },
    { name: 'Finn' },
  ]);
  const result = {};

  // Permission denied: the lobby says so, and offers to join without devices.
  await dan.openLobby(ctx.base, room, { camera: false });
  result.denied = await dan.lobbyNote();
  await dan.join(ctx.base, room, { camera: false });
  result.deniedInCall = { tiles: await dan.tiles(), state: (await dan.snapshot()).state };

  // No camera: microphone only; the others see Nora's avatar and get her audio.
  await nora.openLobby(ctx.base, room, { camera: false });
  result.noCamera = await nora.lobbyNote();
  await nora.join(ctx.base, room, { camera: false });
  await waitFor('Dan to receive Nora\'s audio', async () => {
    const stats = await dan.mediaStats();
    return stats.inbound.some((t) => t.kind === 'audio' && (t.packetsReceived || 0) > 20);
  }, 15000);
  result.danSeesNora = (await dan.tiles()).find((t) => t.name === 'Nora');
  result.noraSelf = (await nora.tiles()).find((t) => t.self);

  // Room full: the third person is told, with a way out.
  await finn.join(ctx.base, room, { expect: 'ended' });
  await waitInPage(finn.page, 'the room-full notice', () => !document.getElementById('notice').hidden, null, 10000);
  result.full = await finn.notice();

  // Kicked by an operator: Nora is told; Dan sees her go.
  const listing = await admin(ctx, 'GET', `/admin/rooms/${room}`);
  const noraId = (await nora.snapshot()).selfId;
  await admin(ctx, 'DELETE', `/admin/rooms/${room}/participants/${noraId}`);
  await waitInPage(nora.page, 'the kicked notice', () => !document.getElementById('notice').hidden, null, 10000);
  result.kicked = await nora.notice();
  await waitFor('Nora gone for Dan', async () => (await remoteTileNames(dan)).length === 0, 10000);

  // Room closed by an operator: the call has ended.
  await admin(ctx, 'DELETE', `/admin/rooms/${room}`);
  await waitInPage(dan.page, 'the ended notice', () => !document.getElementById('notice').hidden, null, 10000);
  result.closed = await dan.notice();
  // Nobody tries to reconnect after being removed: both stay ended for longer than the first
  // reconnect delay (1 s ± 20 %) and a connect would take.
  const states = async () => ({ dan: (await dan.snapshot()).state, nora: (await nora.snapshot()).state });
  const stayed = await holdsFor(states, (s) => s.dan === 'ended' && s.nora === 'ended', 2500);
  result.afterRemoval = { ...(stayed.held ? stayed.last : stayed.broken), samples: stayed.samples };
  result.adminListing = listing;
  result.pageErrors = Object.fromEntries([dan, nora, finn].map((p) => [p.name, p.errors]));
  return result;
}
