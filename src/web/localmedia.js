// What this person sends: the microphone, camera and screen tracks (opened in the lobby, or
// during the call through devices.js), whether each is muted, the transceiver that carries it
// and the track id the server gave it. Turning a device on, off or back on after it stopped by
// itself, and starting or stopping a screen share happen here; the call supplies the media
// connection and the signaling through `hooks` and renders nothing from this module.

import { openLocalMedia, openScreen } from './devices.js';

/**
 * Whether the camera is published as simulcast: on unless `localStorage['chorus.simulcast']`
 * is `off`.
 */
function simulcastOn() {
  try {
    return window.localStorage.getItem('chorus.simulcast') !== 'off';
  } catch {
    return true;
  }
}

/** What a person can send, in the order the tracks are offered. */
export const SOURCES = ['microphone', 'camera', 'screen'];

export class LocalMedia {
  /**
   * `tracks`: `{microphone, camera}` opened in the lobby (either may be null); `muted`:
   * `{microphone, camera}` to start muted. `hooks`: `changed()`, `notice(text, level)`,
   * `ended()` (true once the call is over), `sendMute(trackId, muted)` and `negotiator()` (the
   * media connection to publish on, or null while there is none).
   */
  constructor({ tracks = {}, muted = {} }, hooks) {
    this.hooks = hooks;
    /** source → {source, track, muted, transceiver, trackId} for what we publish. */
    this.entries = {};
    for (const source of ['microphone', 'camera']) {
      if (tracks[source]) this.add(source, tracks[source], Boolean(muted[source]));
    }
    /** The stream camera and microphone are sent in (the screen goes on its own). */
    this.stream = new MediaStream();
  }

  // ----- the media connection ------------------------------------------------------------

  /** Publishes every track on a new media connection. */
  attach(negotiator) {
    for (const source of SOURCES) {
      const entry = this.entries[source];
      if (!entry) continue;
      entry.trackId = null;
      entry.transceiver = negotiator.publish(entry.track, source === 'screen' ? null : this.stream, { simulcast: source === 'camera' && simulcastOn() });
    }
  }

  /** The media connection is gone: no transceivers, no server track ids. */
  detach() {
    for (const source of SOURCES) {
      const entry = this.entries[source];
      if (entry) {
        entry.transceiver = null;
        entry.trackId = null;
      }
    }
  }

  /** `tracks` of an offer: which m-line carries which source, and whether it is muted. */
  describe() {
    const tracks = [];
    for (const source of SOURCES) {
      const entry = this.entries[source];
      if (entry && entry.transceiver && entry.transceiver.mid !== null) {
        tracks.push({ mid: entry.transceiver.mid, source, muted: entry.muted });
      }
    }
    return tracks;
  }

  // ----- what the server says about our tracks ---------------------------------------------

  /** The server announced one of our tracks (`mid`) under `trackId`, muted as it believes. */
  published(mid, trackId, serverMuted) {
    for (const source of SOURCES) {
      const entry = this.entries[source];
      if (entry && entry.transceiver && entry.transceiver.mid === mid) {
        entry.trackId = trackId;
        // A toggle made before the server knew the track id: tell it now.
        if (entry.muted !== serverMuted) this.hooks.sendMute(trackId, entry.muted);
      }
    }
  }

  unpublished(trackId) {
    for (const source of SOURCES) {
      const entry = this.entries[source];
      if (entry && entry.trackId === trackId) entry.trackId = null;
    }
  }

  /** An operator muted (or unmuted) one of our tracks: follow it locally. */
  mutedByServer(trackId, muted) {
    for (const source of SOURCES) {
      const entry = this.entries[source];
      if (entry && entry.trackId === trackId && entry.muted !== muted) {
        entry.muted = muted;
        entry.track.enabled = !muted;
        if (muted) this.hooks.notice(`Your ${source} was muted by a moderator.`, 'info');
      }
    }
  }

  // ----- devices -----------------------------------------------------------------------------

  add(source, track, muted) {
    track.enabled = !muted;
    this.entries[source] = { source, track, muted, transceiver: null, trackId: null };
    if (source !== 'screen') this.watchDevice(source, track);
  }

  /** A camera or microphone that stops by itself (unplugged, taken away) is shown as off. */
  watchDevice(source, track) {
    track.addEventListener('ended', () => {
      const entry = this.entries[source];
      if (!entry || entry.track !== track || this.hooks.ended()) return;
      this.hooks.notice(`Your ${source} stopped working. Turn it on again to retry.`);
      this.setMuted(source, true);
    });
  }

  /** Opens the device again for a track that ended, and sends from the new one. */
  async reopenDevice(source) {
    const entry = this.entries[source];
    const opened = await openLocalMedia({ mic: source === 'microphone', camera: source === 'camera' });
    const track = source === 'microphone' ? opened.mic : opened.camera;
    if (!track) return source === 'microphone' ? opened.micError : opened.cameraError;
    if (this.hooks.ended() || this.entries[source] !== entry) {
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
  publish(source, track, muted = false) {
    this.add(source, track, muted);
    const negotiator = this.hooks.negotiator();
    if (negotiator) {
      this.entries[source].transceiver = negotiator.publish(track, source === 'screen' ? null : this.stream, { simulcast: source === 'camera' && simulcastOn() });
    }
    this.hooks.changed();
  }

  isMuted(source) {
    const entry = this.entries[source];
    return !entry || entry.muted;
  }

  setMuted(source, muted) {
    const entry = this.entries[source];
    if (!entry || entry.muted === muted) return;
    entry.muted = muted;
    entry.track.enabled = !muted;
    if (entry.trackId) this.hooks.sendMute(entry.trackId, muted);
    this.hooks.changed();
  }

  /**
   * Microphone or camera on/off. Without a device yet (none at join, or permission refused),
   * asks for it now. Resolves an error code when that fails, else null.
   */
  async toggle(source) {
    const entry = this.entries[source];
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
    if (this.hooks.ended()) {
      track.stop();
      return null;
    }
    this.stream.addTrack(track);
    this.publish(source, track);
    return null;
  }

  // ----- screen sharing ----------------------------------------------------------------------

  get sharingScreen() {
    return Boolean(this.entries.screen);
  }

  /** Starts or stops sharing the screen (a separate track, source `screen`). */
  async toggleScreen() {
    if (this.entries.screen) {
      this.stopScreen();
      return;
    }
    const track = await openScreen();
    if (!track) return; // cancelled in the picker
    if (this.hooks.ended() || this.entries.screen) {
      track.stop();
      return;
    }
    track.addEventListener('ended', () => {
      if (this.entries.screen && this.entries.screen.track === track) this.stopScreen();
    });
    this.publish('screen', track);
  }

  stopScreen() {
    const entry = this.entries.screen;
    if (!entry) return;
    delete this.entries.screen;
    entry.track.stop();
    const negotiator = this.hooks.negotiator();
    if (negotiator && entry.transceiver) negotiator.unpublish(entry.transceiver);
    this.hooks.changed();
  }

  /** The call ended: the screen share stops (camera and microphone stay for a rejoin). */
  endScreen() {
    if (this.entries.screen) {
      this.entries.screen.track.stop();
      delete this.entries.screen;
    }
  }

  /** Stops the camera and microphone (after the call ended). */
  release() {
    for (const source of SOURCES) {
      const entry = this.entries[source];
      if (entry && entry.track) entry.track.stop();
    }
  }
}
