// Plays the remote participants' audio: one hidden <audio> element per remote audio track.
// If the browser blocks playback until the person interacts with the page, it says so once
// (`onBlocked`) and resumes on the next click or key press.

import { el } from './dom.js';

export class SoundOutput {
  constructor(container, onBlocked) {
    this.container = container;
    this.onBlocked = onBlocked;
    this.players = new Map();
    this.blocked = false;
    const resume = () => this.resumeAll();
    window.addEventListener('pointerdown', resume);
    window.addEventListener('keydown', resume);
  }

  /** Plays exactly these tracks (trackId → MediaStreamTrack). */
  render(tracks) {
    for (const [id, player] of this.players) {
      if (!tracks.has(id)) {
        player.audio.srcObject = null;
        player.audio.remove();
        this.players.delete(id);
      }
    }
    for (const [id, track] of tracks) {
      let player = this.players.get(id);
      if (player && player.track === track) continue;
      if (!player) {
        player = { audio: el('audio', { autoplay: true }), track: null };
        this.container.append(player.audio);
        this.players.set(id, player);
      }
      player.track = track;
      player.audio.srcObject = new MediaStream([track]);
      this.play(player.audio);
    }
  }

  play(audio) {
    audio.play().catch((error) => {
      if (error && error.name === 'NotAllowedError' && !this.blocked) {
        this.blocked = true;
        this.onBlocked();
      }
    });
  }

  resumeAll() {
    if (!this.blocked) return;
    this.blocked = false;
    for (const player of this.players.values()) this.play(player.audio);
  }

  clear() {
    this.render(new Map());
  }
}
