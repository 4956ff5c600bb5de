// Test 7: cross-browser. The three-page call with one page in headless Firefox ESR (driven over
// WebDriver BiDi): every page decodes the two others — Firefox decodes both Chromium pages,
// and both Chromium pages decode Firefox — and audio packets flow both ways.

import { joinAll, remoteTileNames, sampleGrowth, waitAllDecoding } from '../lib/call.mjs';

export async function run(ctx) {
  const specs = [{ name: 'Fiona', browser: 'firefox' }, { name: 'Chris', browser: 'chromium' }, { name: 'Chloe', browser: 'chromium' }];
  const people = await joinAll(ctx, specs, 'cross-browser');
  const t0 = Date.now();
  await waitAllDecoding(people, 25000);
  const allDecodingMs = Date.now() - t0;
  const growth = await sampleGrowth(people);
  const tiles = {};
  for (const p of people) tiles[p.name] = await remoteTileNames(p);
  const userAgents = {};
  for (const p of people) userAgents[p.name] = await p.page.evaluate(() => navigator.userAgent);
  const codecs = {};
  for (const p of people) {
    codecs[p.name] = await p.page.evaluate(async () => {
      const report = await window.chorus.call.negotiator.pc.getStats();
      const out = new Set();
      report.forEach((s) => {
        if (s.type === 'codec') out.add(s.mimeType);
      });
      return [...out].sort();
    });
  }
  return { allDecodingMs, tiles, growth, userAgents, codecs, pageErrors: Object.fromEntries(people.map((p) => [p.name, p.errors])) };
}
