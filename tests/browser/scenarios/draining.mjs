// A draining server (SIGTERM received, calls in progress go on) refuses new joins with
// `server-draining`: the page says so in plain words and keeps retrying with backoff.

import { openParticipants } from '../lib/call.mjs';
import { waitFor } from '../lib/client.mjs';

export async function run(ctx) {
  const [eve] = await openParticipants(ctx, [{ name: 'Eve' }]);
  await eve.join(ctx.base, 'late-arrival', { expect: 'nothing' });
  const banner = await waitFor('the draining banner', async () => {
    const text = await eve.banner();
    return text && /restarting/.test(text) ? text : null;
  }, 10000);
  const snapshot = await eve.snapshot();
  await eve.page.screenshot({ path: `${ctx.artifacts}/draining.png` });
  return { banner, state: snapshot.state, detail: snapshot.detail, pageErrors: { Eve: eve.errors } };
}
