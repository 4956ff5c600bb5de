// Test 3: chat round trip between three pages (typed in the panel, Enter to send), the unread
// badge of a page whose panel is closed, and a fourth page that joins late and sees everyone
// (tiles and participant list) and the chat history in order.

import { joinAll, openParticipants, remoteTileNames } from '../lib/call.mjs';
import { chatShown, peopleShown, unreadBadge, waitFor } from '../lib/client.mjs';

async function send(p, text) {
  await p.click('#btn-chat');
  await p.page.focus('#chat-input');
  await p.page.keyboard.type(text);
  await p.page.keyboard.press('Enter');
}

async function timeUntilShown(people, text, timeoutMs = 5000) {
  const t0 = Date.now();
  const times = {};
  await waitFor(`"${text}" on every page`, async () => {
    for (const p of people) {
      if (times[p.name] === undefined && (await chatShown(p.page)).some((m) => m.text === text)) {
        times[p.name] = Date.now() - t0;
      }
    }
    return Object.keys(times).length === people.length;
  }, timeoutMs);
  return times;
}

export async function run(ctx) {
  const people = await joinAll(ctx, [{ name: 'Alice' }, { name: 'Bob' }, { name: 'Carol' }], 'chat');
  const [alice, bob, carol] = people;
  const first = 'Hello everyone — agenda in 5 minutes';
  const sentAt = Date.now();
  await send(alice, first);
  const firstShown = await timeUntilShown(people, first);
  const roundTripMs = firstShown.Alice;
  ctx.log(`chat round trip ${roundTripMs} ms; shown on ${JSON.stringify(firstShown)}`);
  const reply = 'Hi Alice! 👋 <b>not bold</b>';
  await send(bob, reply);
  const replyShown = await timeUntilShown(people, reply);
  const carolBadge = await unreadBadge(carol.page);
  const aliceBadge = await unreadBadge(alice.page);
  void sentAt;

  // A late fourth page.
  const [dave] = await openParticipants(ctx, [{ name: 'Dave' }]);
  await dave.join(ctx.base, 'chat');
  await waitFor('Dave to see three tiles', async () => (await remoteTileNames(dave)).length === 3, 10000);
  const daveBadge = await unreadBadge(dave.page);
  await dave.click('#btn-chat');
  const history = await chatShown(dave.page);
  await dave.click('#btn-people');
  const daveSees = { tiles: await remoteTileNames(dave), people: await peopleShown(dave.page), history, badgeBeforeOpening: daveBadge };
  const boldInjected = await dave.page.evaluate(() => document.querySelectorAll('#chat-list b').length);
  return {
    roundTripMs,
    firstShownMs: firstShown,
    replyShownMs: replyShown,
    badges: { carol: carolBadge, alice: aliceBadge },
    late: daveSees,
    boldInjected,
    pageErrors: Object.fromEntries([...people, dave].map((p) => [p.name, p.errors])),
  };
}
