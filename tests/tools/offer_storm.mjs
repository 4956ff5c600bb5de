// Offer storm (a measurement aid, not part of the test suite): N WebSocket clients, each alone in
// its own room, each sending a valid M-m-line SDP offer at R offers/s for D seconds and never
// answering anything. Run it beside `chorus loadtest` to see what one participant's negotiation
// does to another room's call (README "Performance", offer storm).
//
//   node tests/tools/offer_storm.mjs ws://127.0.0.1:8080/ws 16 20 45 30
//
// Needs the `ws` package of tests/browser (npm ci --prefix tests/browser).
import { createRequire } from 'node:module';
const require = createRequire(new URL('../browser/package.json', import.meta.url));
const WebSocket = require('ws');

const [url = 'ws://127.0.0.1:8080/ws', n = '16', mlines = '20', rate = '45', secs = '30'] =
  process.argv.slice(2);

function offer(lines, seed) {
  const fp = Array.from({ length: 32 }, (_, i) => ((i * 7 + seed) & 0xff).toString(16).padStart(2, '0').toUpperCase()).join(':');
  const mids = Array.from({ length: lines }, (_, i) => String(i));
  let sdp = `v=0\r\no=- ${1000 + seed} 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n` +
    `a=group:BUNDLE ${mids.join(' ')}\r\na=msid-semantic: WMS storm\r\n`;
  for (const mid of mids) {
    sdp += `m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n` +
      `a=ice-ufrag:st${seed}x\r\na=ice-pwd:stormstormstormstormst${String(seed).padStart(2, '0')}\r\n` +
      `a=ice-options:trickle\r\na=fingerprint:sha-256 ${fp}\r\na=setup:actpass\r\na=mid:${mid}\r\n` +
      `a=sendrecv\r\na=msid:storm t${mid}\r\na=rtcp-mux\r\na=rtcp-rsize\r\n` +
      `a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 goog-remb\r\na=rtcp-fb:96 transport-cc\r\n` +
      `a=rtcp-fb:96 ccm fir\r\na=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\n` +
      `a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n` +
      `a=ssrc-group:FID ${seed * 1000 + Number(mid) * 2 + 1} ${seed * 1000 + Number(mid) * 2 + 2}\r\n` +
      `a=ssrc:${seed * 1000 + Number(mid) * 2 + 1} cname:storm${seed}\r\n` +
      `a=ssrc:${seed * 1000 + Number(mid) * 2 + 2} cname:storm${seed}\r\n`;
  }
  const tracks = mids.map((mid) => ({ mid, source: 'camera', muted: false }));
  return JSON.stringify({ type: 'offer', sdp, tracks });
}

const counts = { sent: 0, answers: 0, errors: {} };
const sockets = [];
for (let i = 0; i < Number(n); i++) {
  const ws = new WebSocket(url);
  const frame = offer(Number(mlines), i + 1);
  ws.on('open', () => ws.send(JSON.stringify({ type: 'join', room: `storm-${i}`, name: `storm-${i}` })));
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString());
    if (msg.type === 'answer') counts.answers++;
    if (msg.type === 'error') counts.errors[msg.code] = (counts.errors[msg.code] || 0) + 1;
    if (msg.type === 'joined' && !ws.timer) {
      ws.timer = setInterval(() => { if (ws.readyState === 1) { ws.send(frame); counts.sent++; } }, 1000 / Number(rate));
    }
  });
  ws.on('error', () => {});
  sockets.push(ws);
}
setTimeout(() => {
  for (const ws of sockets) { clearInterval(ws.timer); ws.close(); }
  console.log(JSON.stringify(counts));
  setTimeout(() => process.exit(0), 200);
}, Number(secs) * 1000);
