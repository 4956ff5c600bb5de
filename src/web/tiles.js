// The video grid: one tile per person (camera video, or an avatar when the camera is off)
// and one per shared screen, each with the name, a microphone-muted indicator, the speaking
// highlight and a connection-quality meter. Tiles are keyed, so a re-render never restarts a
// playing video. The layout picks the column count that gives the largest 16:9 tiles.

import { el, svg } from './dom.js';
import { icons } from './icons.js';
import { hueOf, initials } from './names.js';

const QUALITY_TEXT = { good: 'good', fair: 'fair', poor: 'poor', unknown: 'measuring' };
/** How long the layout must stay put before the tile sizes are sent. */
const SIZE_DEBOUNCE_MS = 400;

export class TileGrid {
  /** `onVideoSize(trackId, width, height)`: a remote video tile's size changed (device px). */
  constructor(container, { onVideoSize = () => {} } = {}) {
    this.container = container;
    this.tiles = new Map();
    this.onVideoSize = onVideoSize;
    this.sizeTimer = null;
    this.resize = new ResizeObserver(() => this.layout());
    this.resize.observe(container);
  }

  /** Shows exactly these tiles (see tilesOf in viewmodel.js). */
  render(tiles) {
    const keys = new Set(tiles.map((t) => t.key));
    for (const [key, tile] of this.tiles) {
      if (!keys.has(key)) {
        tile.video.srcObject = null;
        tile.root.remove();
        this.tiles.delete(key);
      }
    }
    tiles.forEach((spec, index) => {
      let tile = this.tiles.get(spec.key);
      if (!tile) {
        tile = this.create(spec);
        this.tiles.set(spec.key, tile);
      }
      this.update(tile, spec);
      // Keep DOM order = spec order without moving nodes that are already in place.
      if (this.container.children[index] !== tile.root) {
        this.container.insertBefore(tile.root, this.container.children[index] || null);
      }
    });
    this.container.dataset.count = String(tiles.length);
    this.layout();
  }

  /** Sends each remote video tile's size once the layout has settled (debounced). */
  scheduleSizes() {
    clearTimeout(this.sizeTimer);
    this.sizeTimer = setTimeout(() => this.reportSizes(), SIZE_DEBOUNCE_MS);
  }

  /**
   * Tells the server the size each remote video is shown at (device pixels, in steps of 16),
   * when it changed by more than a tenth: it picks the simulcast layer that covers it.
   */
  reportSizes() {
    const ratio = window.devicePixelRatio || 1;
    for (const tile of this.tiles.values()) {
      const { trackId } = tile;
      if (!trackId || tile.root.dataset.self === 'true' || tile.root.dataset.hasVideo !== 'true') continue;
      const width = Math.ceil((tile.video.clientWidth * ratio) / 16) * 16;
      const height = Math.ceil((tile.video.clientHeight * ratio) / 16) * 16;
      if (!width || !height) continue;
      const last = tile.sentSize;
      const near = (a, b) => Math.abs(a - b) <= b / 10;
      if (last && last.trackId === trackId && near(width, last.width) && near(height, last.height)) continue;
      tile.sentSize = { trackId, width, height };
      this.onVideoSize(trackId, width, height);
    }
  }

  create(spec) {
    const video = el('video', { autoplay: true, playsinline: true, muted: true });
    video.muted = true;
    const avatar = el('div', { class: 'avatar', 'aria-hidden': 'true' }, el('span', { text: initials(spec.name) }));
    const micState = el('span', { class: 'mic-state', role: 'img', 'aria-label': 'Microphone muted', title: 'Microphone muted' });
    micState.append(svg(icons.micOff));
    const name = el('span', { class: 'tile-name' });
    const quality = el('span', { class: 'quality', role: 'img' }, el('i'), el('i'), el('i'));
    const note = el('p', { class: 'tile-note' });
    const root = el('figure', { class: 'tile' },
      video, avatar, note,
      el('figcaption', { class: 'tile-label' }, micState, name),
      quality);
    root.style.setProperty('--hue', String(hueOf(spec.peerId + spec.name)));
    return { root, video, avatar, micState, name, quality, note, track: null, trackId: null, sentSize: null };
  }

  update(tile, spec) {
    const { root } = tile;
    root.dataset.key = spec.key;
    root.dataset.peerId = spec.peerId;
    root.dataset.source = spec.source;
    root.dataset.self = String(spec.self);
    root.dataset.audioMuted = String(spec.audioMuted);
    root.dataset.videoMuted = String(spec.videoMuted);
    const label = spec.source === 'screen'
      ? (spec.self ? 'Your screen' : `${spec.name}’s screen`)
      : (spec.self ? `${spec.name} (you)` : spec.name);
    tile.name.textContent = label;
    root.setAttribute('aria-label', label);
    tile.avatar.firstChild.textContent = initials(spec.name);
    tile.micState.hidden = spec.source === 'screen' || !spec.audioMuted;
    const showVideo = Boolean(spec.video) && !spec.videoMuted;
    root.dataset.hasVideo = String(showVideo);
    tile.trackId = spec.self ? null : spec.videoTrackId || null;
    if (tile.track !== spec.video) {
      tile.track = spec.video;
      tile.video.srcObject = spec.video ? new MediaStream([spec.video]) : null;
      if (spec.video) tile.video.play().catch(() => {});
    }
    tile.note.textContent = spec.playable === false ? 'This browser cannot show this video.' : '';
    tile.note.hidden = !tile.note.textContent;
  }

  /** Highlights the tiles of a person who is speaking. */
  setSpeaking(peerId, speaking) {
    for (const tile of this.tiles.values()) {
      if (tile.root.dataset.peerId === peerId && tile.root.dataset.source === 'camera') {
        tile.root.classList.toggle('speaking', speaking);
        tile.root.dataset.speaking = String(speaking);
      }
    }
  }

  /** Shows a tile's connection quality: `good`, `fair`, `poor` or `unknown`, and why. */
  setQuality(key, level, detail = '') {
    const tile = this.tiles.get(key);
    if (!tile) return;
    tile.root.dataset.quality = level;
    const text = `Connection ${QUALITY_TEXT[level] || level}${detail ? ` (${detail})` : ''}`;
    tile.quality.setAttribute('aria-label', text);
    tile.quality.title = text;
  }

  /**
   * Sizes the tiles: with a shared screen, the screen large on top and the people in a strip
   * below it; otherwise the column count that gives the largest 16:9 tiles.
   */
  layout() {
    const tiles = [...this.tiles.values()];
    const n = tiles.length;
    if (!n) return;
    const style = getComputedStyle(this.container);
    const width = this.container.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) - 1;
    const height = this.container.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom) - 1;
    const gap = parseFloat(style.columnGap) || 10;
    if (width <= 0 || height <= 0) return;
    this.scheduleSizes();
    const screen = tiles.find((t) => t.root.dataset.source === 'screen');
    const spotlight = Boolean(screen) && n > 1;
    this.container.classList.toggle('spotlight', spotlight);
    for (const t of tiles) t.root.classList.toggle('featured', spotlight && t === screen);
    if (spotlight) {
      const others = tiles.filter((t) => t !== screen);
      const strip = Math.max(72, Math.min(180, height * 0.22));
      const small = Math.max(96, Math.min(strip * (16 / 9), (width - gap * (others.length - 1)) / others.length));
      const big = Math.min(width, (height - small * (9 / 16) - gap) * (16 / 9));
      screen.root.style.setProperty('--w', `${Math.floor(Math.max(160, big))}px`);
      for (const t of others) t.root.style.setProperty('--w', `${Math.floor(small)}px`);
      return;
    }
    for (const t of tiles) t.root.style.removeProperty('--w');
    let best = { cols: 1, w: 0 };
    for (let cols = 1; cols <= n; cols += 1) {
      const rows = Math.ceil(n / cols);
      const w = Math.min((width - gap * (cols - 1)) / cols, ((height - gap * (rows - 1)) / rows) * (16 / 9));
      if (w > best.w) best = { cols, w };
    }
    this.container.style.setProperty('--tile-w', `${Math.max(120, Math.floor(best.w))}px`);
  }
}
