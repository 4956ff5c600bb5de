// The lobby: room name (a random one, or the one from `?room=`), display name (remembered),
// a live camera preview with a microphone meter, device pickers, microphone/camera toggles
// to join muted, and the invite link with a copy button. It hands the opened tracks to the
// call on Join; until then it owns them.

import { byId, copyText } from './dom.js';
import { deviceIdOf, listDevices, openLocalMedia } from './devices.js';
import { LevelMeter } from './meter.js';
import { BOTH_DENIED, deviceProblem } from './messages.js';
import { inviteLink, nameProblem, randomRoomName, roomProblem } from './names.js';
import { setIcon } from './icons.js';
import { toast } from './notice.js';

const NAME_KEY = 'chorus.name';
const CAMERA_KEY = 'chorus.camera';
const MIC_KEY = 'chorus.mic';

function remembered(key) {
  try {
    return localStorage.getItem(key) || '';
  } catch {
    return '';
  }
}

function remember(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    // private mode: nothing to remember
  }
}

export class Lobby {
  /** `onJoin({room, name, tracks, muted})` takes over the tracks. */
  constructor({ room, onJoin }) {
    this.onJoin = onJoin;
    this.tracks = { microphone: null, camera: null };
    this.errors = { microphone: null, camera: null };
    this.off = { microphone: false, camera: false };
    this.meter = null;
    this.frame = 0;
    this.opening = null;

    this.root = byId('lobby');
    this.roomInput = byId('room-input');
    this.nameInput = byId('name-input');
    this.invite = byId('invite-link');
    this.video = byId('preview-video');
    this.cameraSelect = byId('camera-select');
    this.micSelect = byId('mic-select');
    this.note = byId('media-note');
    this.joinButton = byId('join-button');

    // A link with a room name the server would refuse: show it, and say what is wrong.
    this.roomInput.value = room || randomRoomName();
    this.nameInput.value = remembered(NAME_KEY);
    this.updateInvite();
    if (room && roomProblem(room)) this.showFieldError('room-error', roomProblem(room));

    this.roomInput.addEventListener('input', () => {
      this.showFieldError('room-error', null);
      this.updateInvite();
    });
    this.nameInput.addEventListener('input', () => this.showFieldError('name-error', null));
    byId('new-room').addEventListener('click', () => {
      this.roomInput.value = randomRoomName();
      this.showFieldError('room-error', null);
      this.updateInvite();
    });
    byId('copy-invite').addEventListener('click', async () => {
      const ok = await copyText(this.invite.value);
      const label = byId('copy-invite').querySelector('.label');
      label.textContent = ok ? 'Copied!' : 'Copy failed';
      if (!ok) toast('Could not copy the link; select it and copy it by hand.');
      setTimeout(() => { label.textContent = 'Copy'; }, 2000);
    });
    this.invite.addEventListener('focus', () => this.invite.select());
    byId('preview-mic').addEventListener('click', () => this.toggle('microphone'));
    byId('preview-cam').addEventListener('click', () => this.toggle('camera'));
    this.cameraSelect.addEventListener('change', () => {
      remember(CAMERA_KEY, this.cameraSelect.value);
      this.reopen('camera');
    });
    this.micSelect.addEventListener('change', () => {
      remember(MIC_KEY, this.micSelect.value);
      this.reopen('microphone');
    });
    byId('join-form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.join();
    });
    if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
      navigator.mediaDevices.addEventListener('devicechange', () => {
        if (!this.root.hidden) this.fillPickers();
      });
    }
  }

  /** Shows the lobby and opens camera and microphone for the preview. */
  show(error = null) {
    this.joining = false;
    this.root.hidden = false;
    if (error) this.showFieldError(error.field, error.text);
    (this.nameInput.value ? this.joinButton : this.nameInput).focus();
    this.opening = this.openDevices().finally(() => {
      this.opening = null;
    });
    this.animateMeter();
  }

  hide() {
    this.root.hidden = true;
    cancelAnimationFrame(this.frame);
  }

  updateInvite() {
    const room = this.roomInput.value.trim();
    this.invite.value = roomProblem(room) ? '' : inviteLink(room);
  }

  showFieldError(id, text) {
    const p = byId(id);
    p.textContent = text || '';
    p.hidden = !text;
    const input = id === 'room-error' ? this.roomInput : this.nameInput;
    input.setAttribute('aria-invalid', text ? 'true' : 'false');
  }

  async openDevices() {
    const opened = await openLocalMedia({
      micId: remembered(MIC_KEY),
      cameraId: remembered(CAMERA_KEY),
    });
    // A remembered device that is gone: fall back to the default one.
    if (opened.micError === 'not-found' && remembered(MIC_KEY)) {
      remember(MIC_KEY, '');
      Object.assign(opened, pick(await openLocalMedia({ camera: false }), 'microphone'));
    }
    if (opened.cameraError === 'not-found' && remembered(CAMERA_KEY)) {
      remember(CAMERA_KEY, '');
      Object.assign(opened, pick(await openLocalMedia({ mic: false }), 'camera'));
    }
    if (this.root.hidden) {
      // Joined (or left) while the devices were opening: the call asks again.
      if (opened.mic) opened.mic.stop();
      if (opened.camera) opened.camera.stop();
      return;
    }
    this.setTrack('microphone', opened.mic, opened.micError);
    this.setTrack('camera', opened.camera, opened.cameraError);
    await this.fillPickers();
  }

  async reopen(kind) {
    const opened = kind === 'camera'
      ? await openLocalMedia({ mic: false, cameraId: this.cameraSelect.value })
      : await openLocalMedia({ camera: false, micId: this.micSelect.value });
    if (kind === 'camera') this.setTrack('camera', opened.camera, opened.cameraError);
    else this.setTrack('microphone', opened.mic, opened.micError);
  }

  setTrack(kind, track, error) {
    const old = this.tracks[kind];
    if (old && old !== track) old.stop();
    this.tracks[kind] = track;
    this.errors[kind] = track ? null : error;
    if (track) track.enabled = !this.off[kind];
    if (kind === 'camera') {
      this.video.srcObject = track ? new MediaStream([track]) : null;
    } else {
      if (this.meter) this.meter.stop();
      this.meter = track ? new LevelMeter(track) : null;
    }
    this.render();
  }

  async fillPickers() {
    const { cameras, mics } = await listDevices();
    fill(this.cameraSelect, cameras, deviceIdOf(this.tracks.camera), 'No camera');
    fill(this.micSelect, mics, deviceIdOf(this.tracks.microphone), 'No microphone');
  }

  toggle(kind) {
    this.off[kind] = !this.off[kind];
    const track = this.tracks[kind];
    if (track) track.enabled = !this.off[kind];
    this.render();
  }

  render() {
    const mic = this.tracks.microphone;
    const cam = this.tracks.camera;
    const micOn = Boolean(mic) && !this.off.microphone;
    const camOn = Boolean(cam) && !this.off.camera;
    setToggle(byId('preview-mic'), micOn, Boolean(mic), 'mic', 'micOff', 'Microphone');
    setToggle(byId('preview-cam'), camOn, Boolean(cam), 'camera', 'cameraOff', 'Camera');
    byId('preview-off').hidden = camOn;
    byId('preview-off').firstElementChild.textContent = cam ? 'Camera is off' : 'No camera';
    const notes = [];
    const denied = this.errors.microphone === 'permission-denied' && this.errors.camera === 'permission-denied';
    if (denied) {
      notes.push(BOTH_DENIED);
    } else if (this.errors.microphone === 'insecure') {
      notes.push(deviceProblem('camera', 'insecure'));
    } else {
      if (this.errors.camera) notes.push(deviceProblem('camera', this.errors.camera));
      if (this.errors.microphone) notes.push(deviceProblem('microphone', this.errors.microphone));
    }
    this.note.textContent = notes.join(' ');
    this.note.hidden = notes.length === 0;
    this.note.dataset.kind = denied ? 'permission-denied' : (this.errors.camera || this.errors.microphone || '');
    this.joinButton.textContent = mic || cam ? 'Join call' : 'Join without camera and microphone';
  }

  animateMeter() {
    const bar = byId('preview-meter');
    const step = () => {
      const level = this.meter ? this.meter.level() : 0;
      bar.style.transform = `scaleX(${Math.min(1, level * 4).toFixed(3)})`;
      this.frame = requestAnimationFrame(step);
    };
    cancelAnimationFrame(this.frame);
    this.frame = requestAnimationFrame(step);
  }

  async join() {
    if (this.joining) return;
    const room = this.roomInput.value.trim();
    const name = this.nameInput.value.trim();
    const roomError = roomProblem(room);
    const nameError = nameProblem(name);
    this.showFieldError('room-error', roomError);
    this.showFieldError('name-error', nameError);
    if (roomError) {
      this.roomInput.focus();
      return;
    }
    if (nameError) {
      this.nameInput.focus();
      return;
    }
    remember(NAME_KEY, name);
    this.joining = true;
    if (this.opening) {
      // Still waiting for the browser's permission prompt (or a slow device).
      const label = this.joinButton.textContent;
      this.joinButton.disabled = true;
      this.joinButton.textContent = 'Waiting for camera and microphone…';
      await this.opening;
      this.joinButton.disabled = false;
      this.joinButton.textContent = label;
    }
    const tracks = { ...this.tracks };
    const muted = { ...this.off };
    this.tracks = { microphone: null, camera: null };
    if (this.meter) this.meter.stop();
    this.meter = null;
    this.video.srcObject = null;
    this.hide();
    this.onJoin({ room, name, tracks, muted });
  }

  /** Opens the devices again without showing the lobby (Rejoin after leaving). */
  async reopenForRejoin() {
    const opened = await openLocalMedia({ micId: remembered(MIC_KEY), cameraId: remembered(CAMERA_KEY) });
    return { microphone: opened.mic, camera: opened.camera };
  }
}

function pick(opened, kind) {
  return kind === 'camera'
    ? { camera: opened.camera, cameraError: opened.cameraError }
    : { mic: opened.mic, micError: opened.micError };
}

function fill(select, devices, current, none) {
  const options = devices.map((d) => new Option(d.label, d.deviceId, false, d.deviceId === current));
  if (!options.length) options.push(new Option(none, '', true, true));
  select.replaceChildren(...options);
  select.disabled = devices.length === 0;
}

function setToggle(button, on, available, iconOn, iconOff, what) {
  button.setAttribute('aria-pressed', String(on));
  button.disabled = !available;
  button.classList.toggle('off', !on);
  setIcon(button.querySelector('.icon'), on ? iconOn : iconOff);
  button.querySelector('.label').textContent = available
    ? `${what} ${on ? 'on' : 'off'}`
    : `No ${what.toLowerCase()}`;
  button.title = available ? `Turn ${what.toLowerCase()} ${on ? 'off' : 'on'}` : `No ${what.toLowerCase()} available`;
}
