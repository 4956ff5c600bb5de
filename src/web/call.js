// One person's call: the SFU protocol v1 conversation over the signaling socket (join, chat,
// leave, presence, track announcements, mute), the tracks this person publishes, the tracks
// others publish, and the call's state — connecting, connected, reconnecting (socket retries
// with backoff, ICE restart or a fresh connection when the media path fails) and ended (left,
// kicked, room closed, room full, refused). It renders nothing: it emits `change`, `chat` and
// `notice` events that the view turns into pixels.

import { Backoff, Signaling, signalingUrl } from './signaling.js';
import { Negotiator } from './negotiator.js';
import { openLocalMedia, openScreen } from './devices.js';

/** Errors that end a join attempt for good (retrying cannot fix them). */
const JOIN_REFUSALS = new Set([
  'bad-room', 'bad-name', 'auth-required', 'bad-token', 'token-expired', 'wrong-room',
  'too-many-rooms', 'id-taken', 'forbidden',
]);
/** Errors and messages by which the server (or an operator) removes us or closes the room. */
const KICKED = new Set(['kicked', 'removed']);
const ROOM_CLOSED = new Set(['room-closed', 'ended', 'call-ended']);

const SOURCES = ['microphone', 'camera', 'screen'];
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
    this.chat = [];
    /** source → {source, track, muted, transceiver, trackId} for what we publish. */
    this.local = {};
    for (const source of ['microphone', 'camera']) {
      if (tracks[source]) this.addLocal(source, tracks[source], Boolean(muted[source]));
    }
    this.stream = new MediaStream();
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
    this.stopScreenTrack();
    this.participants.clear();
    this.setState('ended', { reason, ...extra });
  }

  /** Stops the camera and microphone (after the call ended). */
  releaseDevices() {
    for (const source of SOURCES) {
      const entry = this.local[source];
      if (entry && entry.track) entry.track.stop();
    }
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
    // Normally an `error` (kicked, room-closed) came first; the close reason is the fallback.
    if (/kick|removed/i.test(reason || '')) {
      this.end('kicked', { message: reason });
      return;
    }
    if (/room closed|closed the room/i.test(reason || '')) {
      this.end('room-closed', { message: reason });
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
      case 'error':
        this.onError(m);
        break;
      case 'offer':
      case 'answer':
      case 'candidate':
        if (this.negotiator) this.negotiator.handle(m);
        break;
      default:
        if (KICKED.has(m.type)) this.end('kicked', { message: m.message || m.reason });
        else if (ROOM_CLOSED.has(m.type)) this.end('room-closed', { message: m.message || m.reason });
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
    this.chat = m.chat.slice();
    this.dispatchEvent(new CustomEvent('chat', { detail: { messages: this.chat, history: true } }));
    this.setState('connected');
    this.startMedia();
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
    if (KICKED.has(code)) {
      this.end('kicked', { message: m.message });
      return;
    }
    if (ROOM_CLOSED.has(code)) {
      this.end('room-closed', { message: m.message });
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
      describeTracks: () => this.describeTracks(),
      onTrack: (event) => this.onRemoteTrack(event),
      onConnectionState: (state) => this.onConnectionState(state),
      onProblem: (code, message) => this.onNegotiationProblem(code, message),
    });
    this.negotiator = negotiator;
    this.mediaState = 'new';
    for (const source of SOURCES) {
      const entry = this.local[source];
      if (!entry) continue;
      entry.trackId = null;
      entry.transceiver = negotiator.publish(entry.track, source === 'screen' ? null : this.stream);
    }
    this.changed();
  }

  stopMedia() {
    clearTimeout(this.mediaTimer);
    if (this.negotiator) this.negotiator.close();
    this.negotiator = null;
    this.mediaState = 'closed';
    this.remote.clear();
    for (const source of SOURCES) {
      const entry = this.local[source];
      if (entry) {
        entry.transceiver = null;
        entry.trackId = null;
      }
    }
  }

  describeTracks() {
    const tracks = [];
    for (const source of SOURCES) {
      const entry = this.local[source];
      if (entry && entry.transceiver && entry.transceiver.mid !== null) {
        tracks.push({ mid: entry.transceiver.mid, source, muted: entry.muted });
      }
    }
    return tracks;
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
      for (const source of SOURCES) {
        const entry = this.local[source];
        if (entry && entry.transceiver && entry.transceiver.mid === m.mid) {
          entry.trackId = m.trackId;
          // A toggle made before the server knew the track id: tell it now.
          if (entry.muted !== m.muted) this.send({ type: 'mute', trackId: m.trackId, muted: entry.muted });
        }
      }
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
      for (const source of SOURCES) {
        const entry = this.local[source];
        if (entry && entry.trackId === m.trackId) entry.trackId = null;
      }
      return;
    }
    this.remote.delete(m.trackId);
    this.changed();
  }

  onMute(m) {
    if (m.peerId === this.selfId) {
      // An operator muted (or unmuted) one of our tracks: follow it locally.
      for (const source of SOURCES) {
        const entry = this.local[source];
        if (entry && entry.trackId === m.trackId && entry.muted !== m.muted) {
          entry.muted = m.muted;
          entry.track.enabled = !m.muted;
          if (m.muted) this.notice(`Your ${source === 'microphone' ? 'microphone' : source} was muted by a moderator.`, 'info');
        }
      }
      this.changed();
      return;
    }
    const entry = this.remote.get(m.trackId);
    if (entry) {
      entry.muted = m.muted;
      this.changed();
    }
  }

  // ----- what we publish -------------------------------------------------------------------

  addLocal(source, track, muted) {
    track.enabled = !muted;
    this.local[source] = { source, track, muted, transceiver: null, trackId: null };
    if (source !== 'screen') this.watchDevice(source, track);
  }

  /** A camera or microphone that stops by itself (unplugged, taken away) is shown as off. */
  watchDevice(source, track) {
    track.addEventListener('ended', () => {
      const entry = this.local[source];
      if (!entry || entry.track !== track || this.state === 'ended') return;
      this.notice(`Your ${source} stopped working. Turn it on again to retry.`);
      this.setMuted(source, true);
    });
  }

  /** Opens the device again for a track that ended, and sends from the new one. */
  async reopenDevice(source) {
    const entry = this.local[source];
    const opened = await openLocalMedia({ mic: source === 'microphone', camera: source === 'camera' });
    const track = source === 'microphone' ? opened.mic : opened.camera;
    if (!track) return source === 'microphone' ? opened.micError : opened.cameraError;
    if (this.state === 'ended' || this.local[source] !== entry) {
      track.stop();
      return null;
    }
    this.stream.removeTrack(entry.track);
    this.stream.addTrack(track);
    entry.track = track;
    track.enabled = !entry.muted;
    this.watchDevice(source, track);
    if (entry.transceiver) await entry.transceiver.sender.replaceTrack(track);
    return null;
  }

  /** Starts publishing a new local track (if the media connection is up, renegotiates). */
  publishLocal(source, track, muted = false) {
    this.addLocal(source, track, muted);
    if (this.negotiator) {
      this.local[source].transceiver = this.negotiator.publish(track, source === 'screen' ? null : this.stream);
    }
    this.changed();
  }

  isMuted(source) {
    const entry = this.local[source];
    return !entry || entry.muted;
  }

  setMuted(source, muted) {
    const entry = this.local[source];
    if (!entry || entry.muted === muted) return;
    entry.muted = muted;
    entry.track.enabled = !muted;
    if (entry.trackId) this.send({ type: 'mute', trackId: entry.trackId, muted });
    this.changed();
  }

  /**
   * Microphone or camera on/off. Without a device yet (none at join, or permission refused),
   * asks for it now. Resolves an error code when that fails, else null.
   */
  async toggle(source) {
    const entry = this.local[source];
    if (entry && entry.muted && entry.track.readyState === 'ended') {
      const problem = await this.reopenDevice(source);
      if (problem) return problem;
      this.setMuted(source, false);
      return null;
    }
    if (entry) {
      this.setMuted(source, !entry.muted);
      return null;
    }
    const opened = await openLocalMedia({ mic: source === 'microphone', camera: source === 'camera' });
    const track = source === 'microphone' ? opened.mic : opened.camera;
    if (!track) return source === 'microphone' ? opened.micError : opened.cameraError;
    if (this.state === 'ended') {
      track.stop();
      return null;
    }
    this.stream.addTrack(track);
    this.publishLocal(source, track);
    return null;
  }

  get sharingScreen() {
    return Boolean(this.local.screen);
  }

  /** Starts or stops sharing the screen (a separate track, source `screen`). */
  async toggleScreen() {
    if (this.local.screen) {
      this.stopScreen();
      return;
    }
    const track = await openScreen();
    if (!track) return; // cancelled in the picker
    if (this.state === 'ended' || this.local.screen) {
      track.stop();
      return;
    }
    track.addEventListener('ended', () => {
      if (this.local.screen && this.local.screen.track === track) this.stopScreen();
    });
    this.publishLocal('screen', track);
  }

  stopScreen() {
    const entry = this.local.screen;
    if (!entry) return;
    delete this.local.screen;
    entry.track.stop();
    if (this.negotiator && entry.transceiver) this.negotiator.unpublish(entry.transceiver);
    this.changed();
  }

  stopScreenTrack() {
    if (this.local.screen) {
      this.local.screen.track.stop();
      delete this.local.screen;
    }
  }

  // ----- what the view shows -----------------------------------------------------------------

  /** The people in the call, this person first. */
  people() {
    const self = {
      peerId: this.selfId || 'self',
      name: this.name,
      self: true,
      micMuted: this.isMuted('microphone'),
      cameraOff: this.isMuted('camera'),
      sharing: this.sharingScreen,
    };
    const others = [...this.participants.values()].map((p) => {
      const tracks = [...this.remote.values()].filter((t) => t.peerId === p.peerId);
      const mic = tracks.find((t) => t.source === 'microphone');
      const cam = tracks.find((t) => t.source === 'camera');
      return {
        peerId: p.peerId,
        name: p.name,
        self: false,
        micMuted: !mic || mic.muted,
        cameraOff: !cam || cam.muted,
        sharing: tracks.some((t) => t.source === 'screen'),
      };
    });
    others.sort((a, b) => a.name.localeCompare(b.name));
    return [self, ...others];
  }

  /** The video tiles: one per person (camera + microphone) and one per shared screen. */
  tiles() {
    const tiles = [];
    const cam = this.local.camera;
    const mic = this.local.microphone;
    tiles.push({
      key: 'self',
      peerId: this.selfId || 'self',
      name: this.name,
      self: true,
      source: 'camera',
      video: cam ? cam.track : null,
      audio: null,
      videoMuted: !cam || cam.muted,
      audioMuted: !mic || mic.muted,
      playable: true,
    });
    if (this.local.screen) {
      tiles.push({
        key: 'self-screen',
        peerId: this.selfId || 'self',
        name: this.name,
        self: true,
        source: 'screen',
        video: this.local.screen.track,
        audio: null,
        videoMuted: false,
        audioMuted: true,
        playable: true,
      });
    }
    for (const p of this.participants.values()) {
      const tracks = [...this.remote.values()].filter((t) => t.peerId === p.peerId);
      const camera = tracks.find((t) => t.source === 'camera');
      const microphone = tracks.find((t) => t.kind === 'audio');
      tiles.push({
        key: p.peerId,
        peerId: p.peerId,
        name: p.name,
        self: false,
        source: 'camera',
        video: camera && camera.track && camera.playable ? camera.track : null,
        audio: microphone && microphone.track ? microphone.track : null,
        audioTrackId: microphone ? microphone.trackId : null,
        videoTrackId: camera ? camera.trackId : null,
        videoMuted: !camera || camera.muted,
        audioMuted: !microphone || microphone.muted,
        playable: !camera || camera.playable,
        reason: camera && !camera.playable ? camera.reason : null,
      });
      for (const screen of tracks.filter((t) => t.source === 'screen')) {
        tiles.push({
          key: `${p.peerId}:${screen.trackId}`,
          peerId: p.peerId,
          name: p.name,
          self: false,
          source: 'screen',
          video: screen.track && screen.playable ? screen.track : null,
          audio: null,
          videoTrackId: screen.trackId,
          videoMuted: screen.muted,
          audioMuted: true,
          playable: screen.playable,
          reason: screen.playable ? null : screen.reason,
        });
      }
    }
    return tiles;
  }

  /** Remote audio tracks to play, by track id. */
  audioTracks() {
    const out = new Map();
    for (const t of this.remote.values()) {
      if (t.kind === 'audio' && t.track) out.set(t.trackId, t.track);
    }
    return out;
  }
}
