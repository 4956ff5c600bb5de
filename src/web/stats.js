// Live measurements of the call for the tiles: who is speaking (the others from the server's
// `active-speakers`, or, until it sends one, from the receivers' synchronization sources; one's
// own from WebAudio), and each tile's connection
// quality (packet loss and round-trip time from getStats, graded good / fair / poor). Polls on
// timers while the call view is up; reads the call, never changes it.

import { LevelMeter } from './meter.js';
import { tilesOf } from './viewmodel.js';

const LEVEL_MS = 150;
const QUALITY_MS = 2000;
const SPEAKING_LEVEL = 0.03;
const SPEAKING_HOLD_MS = 600;

/** good / fair / poor from loss (fraction) and round-trip time (seconds); unknown without data. */
export function grade(loss, rtt) {
  if (loss === null && rtt === null) return 'unknown';
  if ((loss ?? 0) > 0.08 || (rtt ?? 0) > 0.6) return 'poor';
  if ((loss ?? 0) > 0.02 || (rtt ?? 0) > 0.3) return 'fair';
  return 'good';
}

function describe(loss, rtt) {
  const parts = [];
  if (rtt !== null) parts.push(`round trip ${Math.round(rtt * 1000)} ms`);
  if (loss !== null) parts.push(`loss ${(loss * 100).toFixed(1)} %`);
  return parts.join(', ');
}

function fresh(timestamp) {
  // Browsers disagree on the clock of RTCRtpSynchronizationSource.timestamp.
  const now = performance.timeOrigin + performance.now();
  return Math.abs(now - timestamp) < 1000 || Math.abs(performance.now() - timestamp) < 1000;
}

export class MediaMonitor {
  constructor(call, grid) {
    this.call = call;
    this.grid = grid;
    this.loudAt = new Map();
    this.speaking = new Map();
    this.previous = new Map();
    this.meter = null;
    this.levelTimer = setInterval(() => this.levels(), LEVEL_MS);
    this.qualityTimer = setInterval(() => {
      this.quality().catch(() => {});
    }, QUALITY_MS);
  }

  stop() {
    clearInterval(this.levelTimer);
    clearInterval(this.qualityTimer);
    if (this.meter) this.meter.stop();
    this.meter = null;
  }

  /** The current speaking state of each person, for the tiles. */
  levels() {
    const now = performance.now();
    const call = this.call;
    const mic = call.media.entries.microphone;
    if (mic && (!this.meter || this.meter.track !== mic.track)) {
      if (this.meter) this.meter.stop();
      this.meter = new LevelMeter(mic.track);
    }
    const selfId = call.selfId || 'self';
    if (this.meter && !mic.muted && this.meter.level() > SPEAKING_LEVEL) this.loudAt.set(selfId, now);
    // The server's `active-speakers` is the source for the others once it has sent one;
    // before that (or from a server without it) the receivers' audio levels are measured.
    for (const s of call.speakers || []) {
      if (s.peerId !== selfId) this.loudAt.set(s.peerId, now);
    }
    for (const t of call.speakers ? [] : call.remote.values()) {
      if (t.kind !== 'audio' || t.muted || !call.negotiator) continue;
      const receiver = call.negotiator.receiverOf(t.trackId);
      if (!receiver || !receiver.getSynchronizationSources) continue;
      for (const source of receiver.getSynchronizationSources()) {
        if (fresh(source.timestamp) && (source.audioLevel || 0) > SPEAKING_LEVEL) this.loudAt.set(t.peerId, now);
      }
    }
    const people = [selfId, ...call.participants.keys()];
    for (const peerId of people) {
      const speaking = now - (this.loudAt.get(peerId) ?? -Infinity) < SPEAKING_HOLD_MS;
      if (this.speaking.get(peerId) !== speaking) {
        this.speaking.set(peerId, speaking);
        this.grid.setSpeaking(peerId, speaking);
      }
    }
  }

  /** Grades every tile's connection from the last interval's statistics. */
  async quality() {
    const call = this.call;
    const negotiator = call.negotiator;
    if (!negotiator || call.mediaState !== 'connected') {
      for (const tile of tilesOf(call)) this.grid.setQuality(tile.key, 'unknown');
      return;
    }
    // Our own tiles: what the server reports back about what we send.
    const camera = call.media.entries.camera;
    const own = [['self', camera && !camera.muted ? 'camera' : 'microphone'], ['self-screen', 'screen']];
    for (const [key, source] of own) {
      const entry = call.media.entries[source];
      if (!entry || !entry.transceiver) {
        this.grid.setQuality(key, 'unknown');
        continue;
      }
      const report = await entry.transceiver.sender.getStats();
      let loss = null;
      let rtt = null;
      report.forEach((s) => {
        if (s.type === 'remote-inbound-rtp') {
          if (typeof s.fractionLost === 'number') loss = s.fractionLost;
          if (typeof s.roundTripTime === 'number') rtt = s.roundTripTime;
        }
        if (s.type === 'candidate-pair' && s.nominated && typeof s.currentRoundTripTime === 'number' && rtt === null) {
          rtt = s.currentRoundTripTime;
        }
      });
      this.grid.setQuality(key, grade(loss, rtt), describe(loss, rtt));
    }
    // Others' tiles: loss on the tracks we receive from them.
    for (const tile of tilesOf(call)) {
      if (tile.self) continue;
      const trackId = tile.videoMuted ? tile.audioTrackId : tile.videoTrackId;
      const receiver = trackId ? negotiator.receiverOf(trackId) : null;
      if (!receiver) {
        this.grid.setQuality(tile.key, 'unknown');
        continue;
      }
      const report = await receiver.getStats();
      let received = null;
      let lost = null;
      let rtt = null;
      report.forEach((s) => {
        if (s.type === 'inbound-rtp') {
          received = s.packetsReceived;
          lost = s.packetsLost;
        }
        if (s.type === 'candidate-pair' && s.nominated && typeof s.currentRoundTripTime === 'number') {
          rtt = s.currentRoundTripTime;
        }
      });
      let loss = null;
      const before = this.previous.get(tile.key);
      if (received !== null && before) {
        const got = received - before.received;
        const missed = Math.max(0, lost - before.lost);
        loss = got + missed > 0 ? missed / (got + missed) : null;
      }
      if (received !== null) this.previous.set(tile.key, { received, lost });
      this.grid.setQuality(tile.key, grade(loss, rtt), describe(loss, rtt));
    }
  }
}
