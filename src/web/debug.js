// `window.chorus`: a read-only window into the running call for the browser console and the
// browser tests — the call's state, its tiles and the per-track RTP counters (frames decoded,
// packets received, bytes sent) from getStats. Nothing here changes the call.

import { peopleOf, speakersOf, tilesOf } from './viewmodel.js';

async function rtpCounters(statsSource, type) {
  const totals = {};
  if (!statsSource) return totals;
  const report = await statsSource.getStats();
  report.forEach((s) => {
    if (s.type !== type) return;
    for (const key of ['packetsReceived', 'packetsLost', 'bytesReceived', 'framesDecoded',
      'framesReceived', 'packetsSent', 'bytesSent', 'framesEncoded', 'framesSent']) {
      if (typeof s[key] === 'number') totals[key] = (totals[key] || 0) + s[key];
    }
    for (const key of ['frameWidth', 'frameHeight', 'targetBitrate', 'qualityLimitationReason', 'codecId']) {
      if (s[key] !== undefined) totals[key] = s[key];
    }
  });
  return totals;
}

export function installDebug(app) {
  window.chorus = {
    /** The current Call, or null. */
    get call() {
      return app.call;
    },
    /** State, people and tiles of the call as plain data. */
    snapshot() {
      const call = app.call;
      if (!call) return { state: 'lobby' };
      return {
        state: call.state,
        detail: call.detail,
        mediaState: call.mediaState,
        selfId: call.selfId,
        room: call.room,
        people: peopleOf(call),
        speakers: speakersOf(call),
        tiles: tilesOf(call).map(({ video, audio, ...rest }) => ({ ...rest, hasVideo: Boolean(video), hasAudio: Boolean(audio) })),
        chat: call.chat.map((m) => ({ id: m.id, name: m.name, text: m.text })),
        negotiation: call.negotiator ? { ...call.negotiator.stats } : null,
      };
    },
    /** RTP counters of every received and sent track. */
    async mediaStats() {
      const call = app.call;
      if (!call) return null;
      const negotiator = call.negotiator;
      const inbound = [];
      for (const t of call.remote.values()) {
        const receiver = negotiator ? negotiator.receiverOf(t.trackId) : null;
        inbound.push({
          trackId: t.trackId,
          peerId: t.peerId,
          kind: t.kind,
          source: t.source,
          muted: t.muted,
          hasTrack: Boolean(t.track),
          ...(await rtpCounters(receiver, 'inbound-rtp')),
        });
      }
      const outbound = [];
      for (const source of ['microphone', 'camera', 'screen']) {
        const entry = call.media.entries[source];
        if (!entry || !entry.transceiver) continue;
        outbound.push({
          source,
          trackId: entry.trackId,
          muted: entry.muted,
          ...(await rtpCounters(entry.transceiver.sender, 'outbound-rtp')),
        });
      }
      return { now: Date.now(), state: call.state, mediaState: call.mediaState, selfId: call.selfId, inbound, outbound };
    },
  };
}
