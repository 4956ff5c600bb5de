// Test 6: mesh compatibility. Two Chromium pages run a peer-to-peer client written to seed
// 002's protocol (static/mesh.html), connect to Chorus' `/ws` with `join {peerId}`, see each
// other in peer-list / peer-joined, and one calls the other: the offer, answer and candidates
// are relayed by the server unchanged, and both decode the other's video directly (P2P).

import { launchChromium } from '../lib/browsers.mjs';
import { waitFor, waitInPage } from '../lib/client.mjs';
import { serveStatic } from '../lib/static-server.mjs';

export async function run(ctx) {
  const site = ctx.keep(await serveStatic());
  const browser = ctx.keep(await launchChromium());
  const ws = `${ctx.base.replace(/^http/, 'ws')}/ws?room=mesh-test`;
  const pages = {};
  for (const id of ['meshA', 'meshB']) {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e.message || e)));
    await page.goto(`${site.base}/mesh.html?id=${id}&loopback=1&ws=${encodeURIComponent(ws)}`);
    await waitInPage(page, `${id} in the mesh`, () => window.mesh && window.mesh.joined, null, 15000);
    pages[id] = { page, errors };
  }
  const a = pages.meshA.page;
  const b = pages.meshB.page;
  await waitInPage(b, 'meshB to list meshA', () => window.mesh.peers.includes('meshA'), null, 5000);
  await waitInPage(a, 'meshA to hear of meshB', () => window.mesh.peers.includes('meshB'), null, 5000);
  const t0 = Date.now();
  await b.click('button[data-peer="meshA"]');
  await waitInPage(b, 'meshB connected to meshA', () => window.mesh.connected.includes('meshA'), null, 15000);
  const connectedMs = Date.now() - t0;
  await waitInPage(a, 'meshA decoding meshB', async () => (await window.mesh.framesDecoded()).meshB > 0, null, 15000);
  await waitInPage(b, 'meshB decoding meshA', async () => (await window.mesh.framesDecoded()).meshA > 0, null, 15000);
  const state = async (page) => page.evaluate(async () => {
    const pc = [...window.mesh.pcs.values()][0];
    let pair = null;
    if (pc) {
      const report = await pc.getStats();
      report.forEach((s) => {
        if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
          const local = report.get(s.localCandidateId);
          const remote = report.get(s.remoteCandidateId);
          pair = { local: `${local.address}:${local.port}`, remote: `${remote.address}:${remote.port}` };
        }
      });
    }
    return {
      peers: window.mesh.peers,
      connected: window.mesh.connected,
      framesDecoded: await window.mesh.framesDecoded(),
      messageTypes: [...new Set(window.mesh.messages)].sort(),
      errors: window.mesh.errors,
      pair,
    };
  });
  // The selected (nominated, succeeded) candidate pair shows in getStats a moment after the
  // frames do.
  await waitFor('a selected candidate pair on both pages', async () => (await state(a)).pair && (await state(b)).pair, 10000);
  return {
    connectedMs,
    meshA: { ...(await state(a)), pageErrors: pages.meshA.errors },
    meshB: { ...(await state(b)), pageErrors: pages.meshB.errors },
  };
}
