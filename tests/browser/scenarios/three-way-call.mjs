// Test 1: three Chromium pages join one room; each shows two remote tiles whose decoded
// frames keep growing, and receives the others' audio packets.

import { joinAll, remoteTileNames, sampleGrowth, waitAllDecoding } from '../lib/call.mjs';

export async function run(ctx) {
  const specs = [{ name: 'Alice' }, { name: 'Bob' }, { name: 'Carol' }];
  const people = await joinAll(ctx, specs, 'three-way');
  const t0 = Date.now();
  await waitAllDecoding(people, 20000);
  const allDecodingMs = Date.now() - t0;
  ctx.log(`every page decodes every other page after ${allDecodingMs} ms`);
  const growth = await sampleGrowth(people, 3000);
  const tiles = {};
  for (const p of people) tiles[p.name] = await remoteTileNames(p);
  return { allDecodingMs, tiles, growth, pageErrors: Object.fromEntries(people.map((p) => [p.name, p.errors])) };
}
