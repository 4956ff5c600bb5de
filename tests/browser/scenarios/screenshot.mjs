// Test 8: a screenshot of a three-person call (desktop 1280×720, plus the same call on a
// phone-sized 390×844 page) written to the artifacts folder, after checking in the page that
// every remote tile really paints video (pixels sampled from each <video> through a canvas).

import fs from 'node:fs';
import path from 'node:path';
import { joinAll, waitAllDecoding } from '../lib/call.mjs';
import { chatShown, sampleUntil, untilStill } from '../lib/client.mjs';

/** Per remote tile: mean and spread of the luma of its current video frame. */
function paintedTiles(page) {
  return page.evaluate(() => [...document.querySelectorAll('#grid .tile[data-self="false"]')].map((tile) => {
    const video = tile.querySelector('video');
    const canvas = document.createElement('canvas');
    canvas.width = 64;
    canvas.height = 36;
    const g = canvas.getContext('2d');
    let mean = 0;
    let spread = 0;
    if (video.videoWidth) {
      g.drawImage(video, 0, 0, 64, 36);
      const { data } = g.getImageData(0, 0, 64, 36);
      const luma = [];
      for (let i = 0; i < data.length; i += 4) luma.push(0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2]);
      mean = luma.reduce((a, b) => a + b, 0) / luma.length;
      spread = Math.sqrt(luma.reduce((a, b) => a + (b - mean) ** 2, 0) / luma.length);
    }
    return { name: tile.querySelector('.tile-name').textContent, width: video.videoWidth, mean: Math.round(mean), spread: Math.round(spread) };
  }));
}

/** Where the page's boxes are (the grid, its tiles, the controls): to wait for a layout to settle. */
function layoutOf(page) {
  return page.evaluate(() => [...document.querySelectorAll('#grid, #grid .tile, #side, .controls .control')]
    .map((e) => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.width, r.height].map(Math.round); }));
}

export async function run(ctx) {
  const people = await joinAll(ctx, [{ name: 'Ada Lovelace' }, { name: 'Grace Hopper' }, { name: 'Alan Turing' }], 'design-review');
  const [ada, grace, alan] = people;
  await waitAllDecoding(people, 20000);
  await alan.click('#btn-mic');
  await grace.click('#btn-chat');
  await grace.page.focus('#chat-input');
  await grace.page.keyboard.type('Screens look great on my side!');
  await grace.page.keyboard.press('Enter');
  await grace.click('#btn-chat');
  // What the screenshot shows has arrived: Alan's muted microphone, Grace's message, and a
  // real picture in every remote tile.
  await sampleUntil(async () => ({
    alanMuted: (await ada.tiles()).some((t) => t.name === 'Alan Turing' && t.micIndicatorVisible),
    chat: (await chatShown(ada.page)).length,
  }), (v) => v.alanMuted && v.chat > 0, 10000, { what: 'Alan muted and the chat message on Ada\'s page' });
  const { value: painted } = await sampleUntil(() => paintedTiles(ada.page),
    (tiles) => tiles.length === 2 && tiles.every((t) => t.width > 0 && t.mean > 20 && t.spread > 5), 10000,
    { what: 'every remote tile on Ada\'s page to paint a picture' });
  fs.mkdirSync(ctx.artifacts, { recursive: true });
  const desktop = path.join(ctx.artifacts, 'three-person-call.png');
  await ada.page.screenshot({ path: desktop });
  await grace.page.setViewportSize({ width: 390, height: 844 });
  await untilStill(() => layoutOf(grace.page), 400, 5000, { what: 'the phone layout' });
  const phone = path.join(ctx.artifacts, 'three-person-call-phone.png');
  await grace.page.screenshot({ path: phone });
  const phoneLayout = await grace.page.evaluate(() => ({
    scrollWidth: document.scrollingElement.scrollWidth,
    width: innerWidth,
    height: innerHeight,
    controls: [...document.querySelectorAll('.controls .control')].filter((b) => !b.hidden).map((b) => {
      const r = b.getBoundingClientRect();
      return { label: b.querySelector('.label').textContent, left: r.left, right: r.right, bottom: r.bottom, width: r.width, height: r.height, clipped: b.querySelector('.label').scrollWidth > b.querySelector('.label').clientWidth };
    }),
    tiles: [...document.querySelectorAll('#grid .tile')].map((t) => t.getBoundingClientRect().width),
  }));
  await ada.click('#btn-chat');
  await sampleUntil(() => ada.page.evaluate(() => !document.getElementById('side').hidden), Boolean, 5000, { what: 'the chat panel' });
  await untilStill(() => layoutOf(ada.page), 400, 5000, { what: 'the layout with the chat panel' });
  const withChat = path.join(ctx.artifacts, 'three-person-call-chat.png');
  await ada.page.screenshot({ path: withChat });
  const layout = await ada.page.evaluate(() => {
    const rect = (id) => document.getElementById(id).getBoundingClientRect().toJSON();
    return { grid: rect('grid'), controls: rect('btn-leave'), viewport: { w: innerWidth, h: innerHeight } };
  });
  return {
    screenshots: [desktop, phone, withChat].map((file) => ({ file, bytes: fs.statSync(file).size })),
    painted,
    layout,
    phoneLayout,
    pageErrors: Object.fromEntries(people.map((p) => [p.name, p.errors])),
  };
}
