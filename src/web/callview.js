// The call screen: binds a Call to the page — header (room, head count, media status, invite
// link), the tile grid, remote audio, the controls (microphone, camera, screen share, chat,
// people, leave) with their keyboard shortcuts, the side panel with chat and participants,
// and the banner while (re)connecting. It turns the call's events into the DOM and the
// person's clicks and keys into calls on the Call.

import { byId, copyText, typingInField } from './dom.js';
import { setIcon } from './icons.js';
import { connectingText, deviceProblem } from './messages.js';
import { inviteLink } from './names.js';
import { hideBanner, showBanner, toast } from './notice.js';
import { ChatPanel } from './chat.js';
import { PeopleList } from './people.js';
import { SoundOutput } from './sound.js';
import { MediaMonitor } from './stats.js';
import { TileGrid } from './tiles.js';
import { audioTracksOf, peopleOf, tilesOf } from './viewmodel.js';

const MEDIA_STATUS = {
  new: 'Connecting media…',
  connecting: 'Connecting media…',
  connected: '',
  disconnected: 'Media interrupted — recovering…',
  failed: 'Media connection failed — recovering…',
  closed: '',
};

export class CallView {
  /** `onEnded(call)` runs once when the call reaches `ended`. */
  constructor(call, { onEnded }) {
    this.call = call;
    this.onEnded = onEnded;
    this.root = byId('call');
    this.grid = new TileGrid(byId('grid'), {
      onVideoSize: (trackId, width, height) => call.send({ type: 'video-size', trackId, width, height }),
    });
    this.sound = new SoundOutput(byId('audio-out'), () => {
      showBanner('Your browser paused the sound.', { label: 'Play sound', onClick: () => { this.sound.resumeAll(); this.render(); } }, 'info');
    });
    this.people = new PeopleList(byId('people-list'));
    this.chat = new ChatPanel({
      list: byId('chat-list'),
      form: byId('chat-form'),
      input: byId('chat-input'),
      badge: byId('chat-badge'),
      empty: byId('chat-empty'),
      onSend: (text) => {
        const sent = call.sendChat(text);
        if (!sent) toast('Not connected: the message was not sent. It will be possible again once the call reconnects.');
        return sent;
      },
    });
    this.monitor = new MediaMonitor(call, this.grid);
    /** Phone-sized screens get one-word control labels. */
    this.narrow = window.matchMedia('(max-width: 560px)');
    this.startedAt = null;
    this.clock = setInterval(() => this.renderClock(), 1000);
    this.panel = null;
    this.countdown = null;
    this.firstHistory = true;
    this.busy = false;

    byId('call-room').textContent = call.room;
    document.title = `${call.room} · Chorus`;

    this.listeners = [];
    const on = (target, type, fn) => {
      target.addEventListener(type, fn);
      this.listeners.push(() => target.removeEventListener(type, fn));
    };
    on(call, 'change', () => this.render());
    on(call, 'chat', (event) => this.onChat(event.detail));
    on(call, 'notice', (event) => toast(event.detail.text, event.detail.level));
    on(byId('btn-mic'), 'click', () => this.toggleDevice('microphone'));
    on(byId('btn-cam'), 'click', () => this.toggleDevice('camera'));
    on(byId('btn-screen'), 'click', () => this.toggleScreen());
    on(byId('btn-chat'), 'click', () => this.togglePanel('chat'));
    on(byId('btn-people'), 'click', () => this.togglePanel('people'));
    on(byId('tab-chat'), 'click', () => this.openPanel('chat'));
    on(byId('tab-people'), 'click', () => this.openPanel('people'));
    on(byId('close-side'), 'click', () => this.closePanel());
    on(byId('btn-leave'), 'click', () => call.leave());
    on(byId('copy-invite-call'), 'click', () => this.copyInvite());
    on(document, 'keydown', (event) => this.onKey(event));
    on(this.narrow, 'change', () => this.renderControls());

    this.root.hidden = false;
    this.render();
    byId('btn-mic').focus();
  }

  destroy() {
    for (const off of this.listeners) off();
    this.listeners = [];
    this.monitor.stop();
    this.sound.clear();
    this.grid.render([]);
    clearInterval(this.countdown);
    clearInterval(this.clock);
    hideBanner();
    this.closePanel();
    byId('chat-list').replaceChildren();
    this.root.hidden = true;
    document.title = 'Chorus';
  }

  render() {
    const call = this.call;
    if (call.state === 'ended') {
      const onEnded = this.onEnded;
      this.onEnded = null;
      if (onEnded) onEnded(call);
      return;
    }
    this.grid.render(tilesOf(call));
    this.sound.render(audioTracksOf(call));
    const people = peopleOf(call);
    this.people.render(people);
    byId('call-count').textContent = `${people.length} ${people.length === 1 ? 'person' : 'people'}`;
    byId('people-count').textContent = `(${people.length})`;
    byId('call-status').textContent = call.state === 'connected' ? (MEDIA_STATUS[call.mediaState] ?? '') : '';
    if (call.state === 'connected' && this.startedAt === null) this.startedAt = Date.now();
    this.renderClock();
    this.root.dataset.state = call.state;
    this.root.dataset.media = call.mediaState;
    this.renderControls();
    this.renderBanner();
  }

  /** Time in the call, shown in the header once joined. */
  renderClock() {
    const clock = byId('call-clock');
    clock.hidden = this.startedAt === null;
    if (this.startedAt === null) return;
    const s = Math.floor((Date.now() - this.startedAt) / 1000);
    const hh = Math.floor(s / 3600);
    const mm = String(Math.floor((s % 3600) / 60)).padStart(hh ? 2 : 1, '0');
    const ss = String(s % 60).padStart(2, '0');
    clock.textContent = hh ? `${hh}:${mm}:${ss}` : `${mm}:${ss}`;
  }

  renderControls() {
    const call = this.call;
    const short = this.narrow.matches;
    const mic = byId('btn-mic');
    const micMuted = call.media.isMuted('microphone');
    // The label says what a press does ("Unmute"), so no aria-pressed on these three.
    mic.dataset.off = String(micMuted);
    mic.classList.toggle('off', micMuted);
    setIcon(mic.querySelector('.icon'), micMuted ? 'micOff' : 'mic');
    mic.querySelector('.label').textContent = micMuted ? 'Unmute' : 'Mute';
    mic.title = `${micMuted ? 'Unmute' : 'Mute'} microphone (M)`;

    const cam = byId('btn-cam');
    const camOff = call.media.isMuted('camera');
    cam.dataset.off = String(camOff);
    cam.classList.toggle('off', camOff);
    setIcon(cam.querySelector('.icon'), camOff ? 'cameraOff' : 'camera');
    cam.querySelector('.label').textContent = short ? 'Video' : (camOff ? 'Start video' : 'Stop video');
    cam.title = `${camOff ? 'Start' : 'Stop'} camera (V)`;

    const screen = byId('btn-screen');
    const sharing = call.media.sharingScreen;
    screen.dataset.active = String(sharing);
    screen.classList.toggle('active', sharing);
    setIcon(screen.querySelector('.icon'), sharing ? 'screenStop' : 'screen');
    screen.querySelector('.label').textContent = short ? (sharing ? 'Stop' : 'Share') : (sharing ? 'Stop sharing' : 'Share screen');
    screen.title = `${sharing ? 'Stop sharing' : 'Share your screen'} (S)`;
    screen.hidden = !(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);

    byId('btn-chat').setAttribute('aria-pressed', String(this.panel === 'chat'));
    byId('btn-chat').title = 'Chat (C)';
    byId('btn-people').setAttribute('aria-pressed', String(this.panel === 'people'));
    byId('btn-people').title = 'Participants (P)';
    byId('btn-leave').title = 'Leave the call';
  }

  renderBanner() {
    const call = this.call;
    clearInterval(this.countdown);
    this.countdown = null;
    if (call.state === 'connected') {
      if (!this.sound.blocked) hideBanner();
      return;
    }
    const update = () => {
      const left = call.detail.retryAt ? Math.max(0, Math.ceil((call.detail.retryAt - Date.now()) / 1000)) : 0;
      const text = connectingText(call.state, call.detail, left);
      const retry = call.detail.retryAt ? { label: 'Retry now', onClick: () => call.retryNow() } : null;
      showBanner(text, retry, call.state === 'reconnecting' || call.detail.reason ? 'warn' : 'info');
    };
    update();
    if (call.detail.retryAt) this.countdown = setInterval(update, 1000);
  }

  onChat({ messages, history }) {
    if (history) {
      this.chat.setHistory(messages, this.call.selfId, this.firstHistory);
      this.firstHistory = false;
    } else {
      for (const m of messages) this.chat.add(m);
    }
  }

  async toggleDevice(source) {
    if (this.busy) return;
    this.busy = true;
    try {
      const problem = await this.call.media.toggle(source);
      if (problem) toast(deviceProblem(source === 'camera' ? 'camera' : 'microphone', problem, true));
    } finally {
      this.busy = false;
    }
  }

  async toggleScreen() {
    if (this.busy) return;
    this.busy = true;
    try {
      await this.call.media.toggleScreen();
    } catch (error) {
      toast(error.message || 'Screen sharing failed.');
    } finally {
      this.busy = false;
    }
  }

  togglePanel(which) {
    if (this.panel === which) this.closePanel();
    else this.openPanel(which);
  }

  openPanel(which) {
    this.panel = which;
    byId('side').hidden = false;
    byId('chat-panel').hidden = which !== 'chat';
    byId('people-panel').hidden = which !== 'people';
    byId('tab-chat').setAttribute('aria-selected', String(which === 'chat'));
    byId('tab-people').setAttribute('aria-selected', String(which === 'people'));
    this.root.classList.add('with-side');
    this.chat.setOpen(which === 'chat');
    if (which === 'chat') byId('chat-input').focus();
    this.renderControls();
    this.grid.layout();
  }

  closePanel() {
    this.panel = null;
    byId('side').hidden = true;
    this.root.classList.remove('with-side');
    this.chat.setOpen(false);
    this.renderControls();
    this.grid.layout();
  }

  async copyInvite() {
    const ok = await copyText(inviteLink(this.call.room));
    toast(ok ? 'Invite link copied.' : 'Could not copy the link.', ok ? 'info' : 'error');
  }

  onKey(event) {
    if (event.key === 'Escape' && this.panel) {
      this.closePanel();
      byId('btn-mic').focus();
      return;
    }
    if (typingInField(event) || event.ctrlKey || event.metaKey || event.altKey) return;
    const actions = {
      m: () => this.toggleDevice('microphone'),
      v: () => this.toggleDevice('camera'),
      s: () => this.toggleScreen(),
      c: () => this.togglePanel('chat'),
      p: () => this.togglePanel('people'),
    };
    const action = actions[event.key.toLowerCase()];
    if (action) {
      event.preventDefault();
      action();
    }
  }
}
