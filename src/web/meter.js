// Audio level of a local track, measured with WebAudio (an AnalyserNode): drives the lobby's
// microphone meter and the speaking highlight of one's own tile. One shared AudioContext.

let context = null;

function audioContext() {
  if (!context) {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return null;
    context = new Ctx();
    // Browsers start an AudioContext suspended until the person interacts with the page.
    const resume = () => {
      if (context.state === 'suspended') context.resume().catch(() => {});
    };
    for (const type of ['pointerdown', 'keydown', 'touchend']) {
      window.addEventListener(type, resume, { capture: true });
    }
  }
  if (context.state === 'suspended') context.resume().catch(() => {});
  return context;
}

export class LevelMeter {
  /** Measures `track` (an audio MediaStreamTrack). */
  constructor(track) {
    this.track = track;
    const ctx = audioContext();
    if (!ctx) return;
    this.source = ctx.createMediaStreamSource(new MediaStream([track]));
    this.analyser = ctx.createAnalyser();
    this.analyser.fftSize = 512;
    this.samples = new Float32Array(this.analyser.fftSize);
    this.source.connect(this.analyser);
  }

  /** The current level, 0 (silence) to 1 (full scale), as RMS; 0 while the track is disabled. */
  level() {
    if (!this.analyser || !this.track.enabled || this.track.readyState !== 'live') return 0;
    this.analyser.getFloatTimeDomainData(this.samples);
    let sum = 0;
    for (const s of this.samples) sum += s * s;
    return Math.sqrt(sum / this.samples.length);
  }

  stop() {
    if (this.source) this.source.disconnect();
    this.source = null;
    this.analyser = null;
  }
}
