// Runs one browser scenario against a running Chorus server and prints what it measured as
// one line `RESULT {json}` (the Rust tests in tests/browser_client.rs assert on it). Usage:
//   node run.mjs <scenario> --base http://127.0.0.1:PORT [--artifacts DIR] [--timeout-ms N]
// Exit status 0 when the scenario ran to its end, 1 when it failed (the JSON has `error`).
// Every browser is closed on the way out, and the whole run is bounded in time.

import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const [scenarioName, ...rest] = process.argv.slice(2);
const options = { base: null, artifacts: path.join(here, '..', 'artifacts'), timeoutMs: 120000 };
for (let i = 0; i < rest.length; i += 2) {
  const [flag, value] = [rest[i], rest[i + 1]];
  if (flag === '--base') options.base = value;
  else if (flag === '--artifacts') options.artifacts = value;
  else if (flag === '--timeout-ms') options.timeoutMs = Number(value);
  else throw new Error(`unknown flag ${flag}`);
}

const cleanups = [];
const started = Date.now();

function report(result, code) {
  process.stdout.write(`RESULT ${JSON.stringify({ ...result, elapsedMs: Date.now() - started })}\n`);
  process.exitCode = code;
}

/** Closes everything opened, each close bounded to 10 s (the bound does not hold the process). */
async function cleanup() {
  const all = cleanups.splice(0).reverse();
  await Promise.all(all.map((fn) => Promise.race([
    fn().catch(() => {}),
    new Promise((resolve) => setTimeout(resolve, 10000).unref()),
  ])));
}

const timer = setTimeout(async () => {
  report({ error: `scenario ${scenarioName} did not finish within ${options.timeoutMs} ms` }, 1);
  await cleanup();
  process.exit(1);
}, options.timeoutMs);

try {
  if (!scenarioName || !options.base) throw new Error('usage: node run.mjs <scenario> --base URL');
  const scenario = await import(`./scenarios/${scenarioName}.mjs`);
  const ctx = {
    base: options.base.replace(/\/$/, ''),
    artifacts: options.artifacts,
    /** Registers something to close at the end (a browser, a server). */
    keep(resource) {
      cleanups.push(() => resource.close());
      return resource;
    },
    log(...args) {
      process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${args.join(' ')}\n`);
    },
  };
  const result = await scenario.run(ctx);
  await cleanup();
  report(result, 0);
} catch (error) {
  await cleanup();
  report({ error: String(error && error.stack ? error.stack : error) }, 1);
} finally {
  clearTimeout(timer);
}
