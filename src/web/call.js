// One person's call: the SFU protocol v1 conversation over the signaling socket (join, chat,
// leave, presence, track announcements, mute), the tracks this person publishes, the tracks
// others publish, and the call's state — connecting, connected, reconnecting (socket retries
// with backoff, ICE restart or a fresh connection when the media path fails) and ended (left,
// kicked, room closed, room full, refused). What this person sends is its LocalMedia
// (localmedia.js); what the screen shows is derived in viewmodel.js. It renders nothing: it
// emits `change`, `chat` and `notice` events that the view turns into pixels.

import { Backoff, Signaling, signalingUrl } from './signaling.js';
import { Negotiator, receiveCapabilities } from './negotiator.js';
import { LocalMedia } from './localmedia.js';

/** Errors that end a join attempt for good (retrying cannot fix them). */
const JOIN_REFUSALS = new Set([
  'bad-room', 'bad-name', 'auth-required', 'bad-token', 'token-expired', 'wrong-room',
  'too-many-rooms', 'id-taken', 'forbidden', 'token-not-yet-valid',
]);

const DISCONNECTED_GRACE_MS = 4000;
const ICE_RESTART_WAIT_MS = 10000;

export class Call extends EventTarget {
  /**
   * `room`, `name`, optional `token`; `tracks`: `{microphone, camera}` tracks opened in the
   * lobby (either may be null) and `muted`: `{microphone, camera}` to start muted.
   */
  constructor({ room, name, token = null, tracks = {}, muted = {} }) {
    super();
    this.room = room;
    this.name = name;
    this.token = token;
    /** connecting | connected | reconnecting | ended */
    this.state = 'connecting';
    /** Why the call is in its state: `{reason, code?, message?, attempt?, retryAt?}`. */
    this.detail = {};
    this.selfId = null;
    this.everJoined = false;
    this.participants = new Map();
    /** trackId → {trackId, peerId, kind, source, muted, playable, reason, track} */
    this.remote = new Map();
    /**
     * Who speaks, loudest first, as the server last said (`active-speakers`):
     * `[{peerId, level}]`; null until it says anything (then tiles fall back to measuring).
     */
    this.speakers = null;
    this.chat = [];
    /** What this person publishes. */
    this.media = new LocalMedia({ tracks, muted }, {
      changed: () => this.changed(),
      notice: (text, level) => this.notice(text, level),
      ended: () => this.state === 'ended',
      sendMute: (trackId, isMuted) => this.send({ type: 'mute', trackId, muted: isMuted }),
      negotiator: () => this.negotiator,
    });
    this.mediaState = 'new';
    this.negotiator = null;
    this.signaling = null;
    this.backoff = new Backoff(1000, 15000);
    this.retryTimer = null;
    this.mediaTimer = null;
    this.iceRestarted = false;
    this.iceServers = [];
  }

  // ----- lifecycle -----------------------------------------------------------------------

  start() {
    this.connect();
  }

  /** Leaves the room (the others see us go at once) and ends the call. */
  leave() {
    if (this.signaling) this.signaling.send({ type: 'leave' });
    this.end('left');
  }

  /** Skips the wait of a pending reconnect. */
  retryNow() {
    if (this.state === 'reconnecting' || (this.state === 'connecting' && this.retryTimer)) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.connect();
    }
  }

  connect() {
    this.retryTimer = null;
    if (this.state === 'ended') return;
    const signaling = new Signaling(signalingUrl(), {
      onOpen: () => {
        const join = { type: 'join', room: this.room, name: this.name };
        if (this.token) join.token = this.token;
        // What it can decode: a participant that publishes nothing never offers, so the
        // server learns it only from here.
        const receive = receiveCapabilities();
        if (receive) join.receive = receive;
        signaling.send(join);
      },
      onMessage: (message) => {
        if (this.signaling === signaling) this.onMessage(message);
      },
      onClose: (info) => {
        if (this.signaling === signaling) this.onSocketClosed(info);
      },
    });
    this.signaling = signaling;
    signaling.open();
  }

  end(reason, extra = {}) {
    if (this.state === 'ended') return;
    clearTimeout(this.retryTimer);
    clearTimeout(this.mediaTimer);
    if (this.signaling) this.signaling.close();
    this.signaling = null;
    this.stopMedia();
    this.media.endScreen();
    this.participants.clear();
    this.setState('ended', { reason, ...extra });
  }

  setState(state, detail = {}) {
    this.state = state;
    this.detail = detail;
    this.changed();
  }

  changed() {
    this.dispatchEvent(new CustomEvent('change'));
  }

  notice(text, level = 'error') {
    this.dispatchEvent(new CustomEvent('notice', { detail: { text, level } }));
  }

  // ----- signaling -------------------------------------------------------------------------

  onSocketClosed({ code, reason }) {
    this.signaling = null;
    if (this.state === 'ended') return;
    // Normally an `error` (kicked, room-closed) came first; the server's close reason ("kicked
    // by an operator", "room closed by an operator") is the fallback.
    if (/kicked/i.test(reason || '')) {
      this.end('kicked', { message: reason });
      return;
    }
    if (/room closed/i.test(reason || '')) {
      this.end('room-closed', { message: reason });
      return;
    }
    if (/replaced/i.test(reason || '')) {
      this.end('replaced', { message: reason });
      return;
    }
    this.scheduleReconnect(code === 1001 ? 'server-restart' : 'network');
  }

  /** Drops the media connection and tries the socket again after the backoff delay. */
  scheduleReconnect(why) {
    this.stopMedia();
    this.participants.clear();
    const delay = this.backoff.next();
    const state = this.everJoined ? 'reconnecting' : 'connecting';
    this.setState(state, {
      reason: why,
      attempt: this.backoff.attempt,
      retryAt: Date.now() + delay,
    });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** Closes the socket ourselves and reconnects (a media path that cannot be repaired). */
  reconnectSession(why) {
    if (this.signaling) this.signaling.close();
    this.signaling = null;
    this.scheduleReconnect(why);
  }

  send(message) {
    return Boolean(this.signaling && this.signaling.send(message));
  }

  onMessage(m) {
    switch (m.type) {
      case 'joined':
        this.onJoined(m);
        break;
      case 'participant-joined':
        this.participants.set(m.peerId, { peerId: m.peerId, name: m.name });
        this.changed();
        break;
      case 'participant-left':
        this.participants.delete(m.peerId);
        if (this.speakers) this.speakers = this.speakers.filter((s) => s.peerId !== m.peerId);
        for (const [id, t] of this.remote) if (t.peerId === m.peerId) this.remote.delete(id);
        this.changed();
        break;
      case 'chat':
        this.chat.push(m);
        this.dispatchEvent(new CustomEvent('chat', { detail: { messages: [m], history: false } }));
        break;
      case 'room-full':
        this.end('room-full', { max: m.maxParticipants });
        break;
      case 'track-published':
        this.onTrackPublished(m);
        break;
      case 'track-unpublished':
        this.onTrackUnpublished(m);
        break;
      case 'mute':
        this.onMute(m);
        break;
      case 'active-speakers':
        this.onActiveSpeakers(m);
        break;
      case 'error':
        this.onError(m);
        break;
      case 'offer':
      case 'answer':
      case 'candidate':
        if (this.negotiator) this.negotiator.handle(m);
        break;
      default:
        // A type this client does not know (a newer server's) changes nothing.
        break;
    }
  }

  onJoined(m) {
    this.selfId = m.peerId;
    this.everJoined = true;
    this.backoff.reset();
    this.iceServers = m.iceServers || [];
    this.participants = new Map(m.participants.map((p) => [p.peerId, p]));
    this.remote.clear();
    this.speakers = null;
    this.chat = m.chat.slice();
    this.dispatchEvent(new CustomEvent('chat', { detail: { messages: this.chat, history: true } }));
    this.setState('connected');
    this.startMedia();
  }

  /** The server's list of who speaks (read by the tiles' speaking ring, stats.js). */
  onActiveSpeakers(m) {
    const list = Array.isArray(m.speakers) ? m.speakers : [];
    this.speakers = list
      .filter((s) => s && typeof s.peerId === 'string')
      .map((s) => ({ peerId: s.peerId, level: Number(s.level) || 0 }));
    this.dispatchEvent(new CustomEvent('speakers', { detail: { speakers: this.speakers } }));
  }

  onError(m) {
    if (this.negotiator && this.negotiator.handle(m)) return;
    const code = m.code;
    if (code === 'media-failed') {
      // The server rebuilt its side of the connection: build ours anew and offer.
      this.notice('The media connection dropped; reconnecting it…', 'info');
      this.startMedia();
      return;
    }
    if (code === 'server-draining') {
      if (this.state === 'connected') {
        this.notice('This server is being restarted. Your call goes on; new calls go elsewhere.', 'info');
      } else {
        this.reconnectSession('draining');
      }
      return;
    }
    if (code === 'cluster-unavailable') {
      // Several nodes: Redis or the room's node could not be reached, or the room's node went
      // away. Connect and join again; the room is placed on a live node.
      this.reconnectSession('cluster');
      return;
    }
    if (code === 'kicked') {
      this.end('kicked', { message: m.message });
      return;
    }
    if (code === 'room-closed') {
      this.end('room-closed', { message: m.message });
      return;
    }
    if (code === 'replaced') {
      // The same invitation joined from another tab or device: reconnecting would take it back.
      this.end('replaced', { message: m.message });
      return;
    }
    if (this.state !== 'connected' && JOIN_REFUSALS.has(code)) {
      this.end('refused', { code, message: m.message });
      return;
    }
    this.notice(m.message || `The server reported an error (${code}).`);
  }

  // ----- chat ------------------------------------------------------------------------------

  /** Sends a chat message; false when not connected (the message is not sent). */
  sendChat(text) {
    if (this.state !== 'connected') return false;
    return this.send({ type: 'chat', text });
  }

  // ----- media connection ------------------------------------------------------------------

  startMedia() {
    this.stopMedia();
    this.iceRestarted = false;
    const negotiator = new Negotiator({
      iceServers: this.iceServers,
      send: (message) => this.send(message),
      describeTracks: () => this.media.describe(),
      onTrack: (event) => this.onRemoteTrack(event),
      onConnectionState: (state) => this.onConnectionState(state),
      onProblem: (code, message) => this.onNegotiationProblem(code, message),
    });
    this.negotiator = negotiator;
    this.mediaState = 'new';
    this.media.attach(negotiator);
    this.changed();
  }

  stopMedia() {
    clearTimeout(this.mediaTimer);
    if (this.negotiator) this.negotiator.close();
    this.negotiator = null;
    this.mediaState = 'closed';
    this.remote.clear();
    this.media.detach();
  }

  onConnectionState(state) {
    this.mediaState = state;
    clearTimeout(this.mediaTimer);
    if (state === 'connected') {
      this.iceRestarted = false;
    } else if (state === 'disconnected') {
      this.mediaTimer = setTimeout(() => this.recoverMedia(), DISCONNECTED_GRACE_MS);
    } else if (state === 'failed') {
      this.recoverMedia();
    }
    this.changed();
  }

  /** The media path failed: first an ICE restart; if that does not bring it back, a new session. */
  recoverMedia() {
    if (!this.negotiator || this.state !== 'connected') return;
    if (!this.iceRestarted) {
      this.iceRestarted = true;
      this.negotiator.requestOffer({ iceRestart: true });
      this.mediaTimer = setTimeout(() => {
        if (this.mediaState !== 'connected') this.reconnectSession('media');
      }, ICE_RESTART_WAIT_MS);
      return;
    }
    this.reconnectSession('media');
  }

  onNegotiationProblem(code, message) {
    if (code === 'no-common-codec') {
      this.notice(`The server cannot forward this browser's media: ${message}`);
      return;
    }
    this.notice(`${message} Reconnecting…`, 'info');
    this.reconnectSession('media');
  }

  // ----- tracks ------------------------------------------------------------------------------

  onRemoteTrack({ track, trackId, peerId }) {
    if (!trackId) return;
    let entry = this.remote.get(trackId);
    if (!entry) {
      entry = {
        trackId,
        peerId,
        kind: track.kind,
        source: track.kind === 'audio' ? 'microphone' : 'camera',
        muted: false,
        playable: true,
        reason: null,
      };
      this.remote.set(trackId, entry);
    }
    entry.track = track;
    this.changed();
  }

  onTrackPublished(m) {
    if (m.peerId === this.selfId) {
      this.media.published(m.mid, m.trackId, m.muted);
      this.changed();
      return;
    }
    const entry = this.remote.get(m.trackId) || { trackId: m.trackId, track: null };
    Object.assign(entry, {
      peerId: m.peerId,
      kind: m.kind,
      source: m.source,
      muted: m.muted,
      playable: m.playable,
      reason: m.reason || null,
    });
    this.remote.set(m.trackId, entry);
    this.changed();
  }

  onTrackUnpublished(m) {
    if (m.peerId === this.selfId) {
      this.media.unpublished(m.trackId);
      return;
    }
    this.remote.delete(m.trackId);
    this.changed();
  }

  onMute(m) {
    if (m.peerId === this.selfId) {
      this.media.mutedByServer(m.trackId, m.muted);
      this.changed();
      return;
    }
    const entry = this.remote.get(m.trackId);
    if (entry) {
      entry.muted = m.muted;
      this.changed();
    }
  }
}
