// The one RTCPeerConnection of a participant and its SDP negotiation, by the README's "Media
// negotiation rules": the client offers whenever the tracks it sends change (`offer {sdp,
// tracks}` after setLocalDescription, so the mids are known); it applies and answers every
// server offer except one that arrives while its own offer is outstanding (the server is the
// polite peer: it rolls back, answers ours and offers again); candidates trickle both ways.
// Every SDP step runs on one queue, so no two overlap. It remembers which m-line carries which
// forwarded track (`tracks` of server offers). It does not decide what to publish.

/** Error codes by which the server refuses an offer or an answer. */
const REJECTIONS = new Set(['bad-sdp', 'no-common-codec', 'wrong-state']);
const ANSWER_TIMEOUT_MS = 10000;
const MAX_RETRIES = 3;

/** Codecs that only repair or accompany media; the server wants the media codecs. */
const NOT_MEDIA = /\/(rtx|red|ulpfec|flexfec-03|cn|telephone-event)$/i;

/**
 * What this browser can decode, for `join.receive` (README, "What a client can receive"): the
 * server then offers it only tracks it can play — without it a viewer that never offers would
 * get the server's default. `null` where the browser cannot tell (the default then applies).
 */
export function receiveCapabilities() {
  if (typeof RTCRtpReceiver === 'undefined' || !RTCRtpReceiver.getCapabilities) return null;
  const codecs = [];
  for (const kind of ['audio', 'video']) {
    const capabilities = RTCRtpReceiver.getCapabilities(kind);
    if (!capabilities) return null;
    for (const codec of capabilities.codecs) {
      if (NOT_MEDIA.test(codec.mimeType)) continue;
      const entry = { mimeType: codec.mimeType };
      if (codec.sdpFmtpLine) entry.sdpFmtpLine = codec.sdpFmtpLine;
      codecs.push(entry);
    }
  }
  return { codecs };
}

/** The camera's simulcast layers, low to high (the order of the `a=simulcast` list). */
const SIMULCAST_ENCODINGS = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];

export class Negotiator {
  /**
   * `options`: `iceServers`; `send(message)`; `describeTracks()` → `[{mid, source, muted}]` of
   * the tracks sent; `onTrack({track, receiver, mid, peerId, trackId})`; `onConnectionState(s)`;
   * `onProblem(code, message)` for what the call must handle (a refused offer, a stuck
   * negotiation).
   */
  constructor(options) {
    this.options = options;
    this.pc = new RTCPeerConnection({
      iceServers: options.iceServers || [],
      bundlePolicy: 'max-bundle',
      rtcpMuxPolicy: 'require',
    });
    /** mid → {peerId, trackId} of the forwarded track on that m-line. */
    this.mids = new Map();
    this.queue = Promise.resolve();
    this.offerOutstanding = false;
    this.wantOffer = false;
    this.wantIceRestart = false;
    this.pendingCandidates = [];
    this.answerTimer = null;
    this.retries = 0;
    this.closed = false;
    this.stats = { offersSent: 0, answersSent: 0, serverOffersIgnored: 0, rejections: 0 };

    this.pc.onicecandidate = (event) => {
      const candidate = event.candidate ? event.candidate.toJSON() : null;
      if (candidate && !candidate.candidate) return; // end of a generation; null follows
      this.options.send({ type: 'candidate', candidate });
    };
    this.pc.ontrack = (event) => {
      const mid = event.transceiver ? event.transceiver.mid : null;
      const known = (mid !== null && this.mids.get(mid)) || {};
      this.options.onTrack({
        track: event.track,
        receiver: event.receiver,
        mid,
        peerId: known.peerId || (event.streams[0] && event.streams[0].id) || null,
        trackId: known.trackId || null,
      });
    };
    this.pc.onconnectionstatechange = () => {
      if (!this.closed) this.options.onConnectionState(this.pc.connectionState);
    };
  }

  /**
   * Starts sending `track` on a send-only transceiver of its own; returns the transceiver.
   * With `simulcast` (the camera) a video track goes out as three rid layers, q/h/f at 1/4,
   * 1/2 and full resolution; the server forwards each viewer the one that fits its tile.
   */
  publish(track, stream, { simulcast = false } = {}) {
    const init = { direction: 'sendonly', streams: stream ? [stream] : [] };
    let transceiver;
    if (simulcast && track.kind === 'video') {
      try {
        const sendEncodings = SIMULCAST_ENCODINGS.map((e) => ({ ...e }));
        transceiver = this.pc.addTransceiver(track, { ...init, sendEncodings });
      } catch {
        // a browser without simulcast: one encoding
      }
    }
    if (!transceiver) transceiver = this.pc.addTransceiver(track, init);
    this.requestOffer();
    return transceiver;
  }

  /** Stops sending on `transceiver` (the server unpublishes the track on the next offer). */
  unpublish(transceiver) {
    try {
      this.pc.removeTrack(transceiver.sender);
    } catch {
      // already removed, or the connection is closed
    }
    this.requestOffer();
  }

  /** Asks for a client offer as soon as the signaling state allows. */
  requestOffer({ iceRestart = false } = {}) {
    this.wantOffer = true;
    this.wantIceRestart = this.wantIceRestart || iceRestart;
    this.enqueue(() => this.offerIfWanted());
  }

  /** The receiver of a forwarded track, by its track id (for stats and audio levels). */
  receiverOf(trackId) {
    for (const t of this.pc.getTransceivers()) {
      if (t.direction !== 'recvonly') continue; // ours send-only, or no longer used
      const known = t.mid !== null && this.mids.get(t.mid);
      if (known && known.trackId === trackId) return t.receiver;
    }
    return null;
  }

  /** Handles a media message of the server; returns true if it was one. */
  handle(message) {
    switch (message.type) {
      case 'offer':
        this.enqueue(() => this.onServerOffer(message.sdp, message.tracks || []));
        return true;
      case 'answer':
        this.enqueue(() => this.onAnswer(message.sdp));
        return true;
      case 'candidate':
        if (message.candidate) this.enqueue(() => this.addCandidate(message.candidate));
        return true;
      case 'error':
        if (!REJECTIONS.has(message.code)) return false;
        this.enqueue(() => this.onRejected(message.code, message.message));
        return true;
      default:
        return false;
    }
  }

  close() {
    this.closed = true;
    clearTimeout(this.answerTimer);
    this.pc.onicecandidate = null;
    this.pc.ontrack = null;
    this.pc.onconnectionstatechange = null;
    try {
      this.pc.close();
    } catch {
      // already closed
    }
  }

  enqueue(step) {
    this.queue = this.queue
      .then(() => (this.closed ? undefined : step()))
      .catch((error) => {
        if (!this.closed) this.options.onProblem('negotiation', `Negotiation failed: ${error.message || error}`);
      });
  }

  async offerIfWanted() {
    if (!this.wantOffer || this.offerOutstanding || this.pc.signalingState !== 'stable') return;
    const iceRestart = this.wantIceRestart;
    this.wantOffer = false;
    this.wantIceRestart = false;
    const offer = await this.pc.createOffer(iceRestart ? { iceRestart: true } : undefined);
    await this.pc.setLocalDescription(offer);
    this.offerOutstanding = true;
    this.stats.offersSent += 1;
    this.options.send({
      type: 'offer',
      sdp: this.pc.localDescription.sdp,
      tracks: this.options.describeTracks(),
    });
    clearTimeout(this.answerTimer);
    this.answerTimer = setTimeout(() => this.enqueue(() => this.onAnswerTimeout()), ANSWER_TIMEOUT_MS);
  }

  async onServerOffer(sdp, tracks) {
    if (this.offerOutstanding) {
      // Glare: the server is polite; it answers our offer and then offers again (with the
      // mids that offer will really use, so this one's track map is not kept either).
      this.stats.serverOffersIgnored += 1;
      return;
    }
    // The offer lists every forwarded track; m-lines it leaves out carry nothing any more.
    this.mids = new Map(tracks.map((t) => [t.mid, { peerId: t.peerId, trackId: t.trackId }]));
    this.receiveCodecs(null); // a recycled m-line may carry another codec now
    await this.pc.setRemoteDescription({ type: 'offer', sdp });
    await this.flushCandidates();
    const answer = await this.pc.createAnswer();
    await this.pc.setLocalDescription(answer);
    this.receiveCodecs('negotiated');
    this.stats.answersSent += 1;
    this.options.send({ type: 'answer', sdp: this.pc.localDescription.sdp });
    await this.offerIfWanted();
  }

  async onAnswer(sdp) {
    if (!this.offerOutstanding) return; // late answer to an offer we gave up
    clearTimeout(this.answerTimer);
    await this.pc.setRemoteDescription({ type: 'answer', sdp });
    this.offerOutstanding = false;
    this.retries = 0;
    await this.flushCandidates();
    await this.offerIfWanted();
  }

  async onRejected(code, message) {
    this.stats.rejections += 1;
    if (this.offerOutstanding) {
      clearTimeout(this.answerTimer);
      await this.rollback();
    }
    // A refused answer leaves the server's offer pending there; our next offer resolves it
    // (the server rolls back). A refused offer is retried unless no retry can help.
    if (code !== 'no-common-codec' && this.retries < MAX_RETRIES) {
      this.retries += 1;
      this.wantOffer = true;
      setTimeout(() => this.enqueue(() => this.offerIfWanted()), 500 * this.retries);
      return;
    }
    this.options.onProblem(code, message);
  }

  async onAnswerTimeout() {
    if (!this.offerOutstanding) return;
    await this.rollback();
    if (this.retries < MAX_RETRIES) {
      this.retries += 1;
      this.wantOffer = true;
      await this.offerIfWanted();
      return;
    }
    this.options.onProblem('negotiation-timeout', 'The server did not answer our media offer.');
  }

  /**
   * Keeps our own offers smaller: in a big room they repeat every receiving m-line, and with all
   * of the browser's codecs that is ~5 KB each (the server's SDP limit grows with the room
   * size, so this is economy, not a necessity). After a server offer is answered (`'negotiated'`), each receiving m-line is
   * limited to the codec it negotiated (plus RTX); before the next server offer (`null`), the
   * limits are lifted so that offer is answered with every codec.
   */
  receiveCodecs(mode) {
    if (typeof RTCRtpTransceiver === 'undefined' || !RTCRtpTransceiver.prototype.setCodecPreferences) return;
    for (const t of this.pc.getTransceivers()) {
      if (t.direction !== 'recvonly' || t.stopped) continue;
      try {
        if (mode === null) {
          t.setCodecPreferences([]);
          continue;
        }
        const kind = t.receiver.track.kind;
        const negotiated = new Set(t.receiver.getParameters().codecs.map((c) => c.mimeType.toLowerCase()));
        const capabilities = (RTCRtpReceiver.getCapabilities(kind) || { codecs: [] }).codecs;
        const media = capabilities.filter((c) => negotiated.has(c.mimeType.toLowerCase()) && !/\/(rtx|red|ulpfec|flexfec-03)$/i.test(c.mimeType));
        if (!media.length) continue;
        const rtx = capabilities.filter((c) => /\/rtx$/i.test(c.mimeType) && negotiated.has(c.mimeType.toLowerCase()));
        t.setCodecPreferences([...media, ...rtx]);
      } catch {
        // A browser that refuses the list keeps its defaults: larger offers, same media.
      }
    }
  }

  async rollback() {
    this.offerOutstanding = false;
    if (this.pc.signalingState === 'have-local-offer') {
      await this.pc.setLocalDescription({ type: 'rollback' });
    }
  }

  async addCandidate(candidate) {
    if (!this.pc.remoteDescription) {
      this.pendingCandidates.push(candidate);
      return;
    }
    try {
      await this.pc.addIceCandidate(candidate);
    } catch {
      // The same addresses are in the server's SDP; a candidate for a stale m-line is harmless.
    }
  }

  async flushCandidates() {
    const pending = this.pendingCandidates;
    this.pendingCandidates = [];
    for (const c of pending) await this.addCandidate(c);
  }
}
