// Launching the browsers of the tests — Debian's Chromium through playwright-core and Firefox
// ESR through puppeteer-core over WebDriver BiDi, both with fake camera, microphone and screen,
// loopback ICE, and nothing that reaches beyond 127.0.0.1 — and one `Participant` type that
// hides which library drives a page.

import { chromium } from 'playwright-core';
import puppeteer from 'puppeteer-core';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const CHROMIUM = process.env.CHORUS_CHROMIUM || '/usr/bin/chromium';
export const FIREFOX = process.env.CHORUS_FIREFOX || '/usr/bin/firefox-esr';

const CHROMIUM_ARGS = [
  '--allow-loopback-in-peer-connection',
  '--no-sandbox',
  '--disable-gpu',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  '--auto-accept-this-tab-capture',
  '--auto-select-desktop-capture-source=Entire screen',
  '--autoplay-policy=no-user-gesture-required',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

function requireExecutable(file, what) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
  } catch {
    throw new Error(`${what} not found at ${file} (apt-get install chromium firefox-esr)`);
  }
}

/**
 * Writes a Y4M clip of random noise (`frames` frames of `width`×`height`) for Chromium's fake
 * camera: noise cannot be compressed, so the encoder sends whatever bitrate congestion control
 * allows (the default fake pattern is so simple that VP8 needs only a few hundred kbps).
 */
export function noiseClip(dir, width = 640, height = 360, frames = 30) {
  const file = path.join(dir, `noise-${width}x${height}.y4m`);
  const header = Buffer.from(`YUV4MPEG2 W${width} H${height} F30:1 Ip A1:1 C420jpeg\n`);
  const frameHeader = Buffer.from('FRAME\n');
  const size = (width * height * 3) / 2;
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, header);
  const frame = Buffer.alloc(size);
  for (let i = 0; i < frames; i += 1) {
    crypto.randomFillSync(frame);
    fs.writeSync(fd, frameHeader);
    fs.writeSync(fd, frame);
  }
  fs.closeSync(fd);
  return file;
}

/**
 * Writes a WAV file of a steady 440 Hz tone (`seconds` long, mono 16-bit 48 kHz, at −12 dBFS)
 * for Chromium's fake microphone: unlike its built-in beep (20 ms twice a second), it is a
 * speaker the server's active-speaker detector hears as talking all the time.
 */
export function toneClip(dir, seconds = 2) {
  const file = path.join(dir, 'tone-440.wav');
  const rate = 48000;
  const samples = rate * seconds;
  const data = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i += 1) {
    data.writeInt16LE(Math.round(0.25 * 32767 * Math.sin((2 * Math.PI * 440 * i) / rate)), i * 2);
  }
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(data.length, 40);
  fs.writeFileSync(file, Buffer.concat([header, data]));
  return file;
}

/**
 * A headless Chromium with its own fresh profile directory. `fakeVideo`: a Y4M file the fake
 * camera plays instead of its built-in pattern; `fakeAudio`: a WAV file the fake microphone
 * plays (looped) instead of its beep. `netns`: a network namespace to run it in (the server is
 * then reached at `secureOrigin`, an http:// origin outside loopback that Chromium is told to
 * treat as secure, so the page may open the camera).
 */
export async function launchChromium({ fakeVideo = null, fakeAudio = null, netns = null, secureOrigin = null } = {}) {
  requireExecutable(CHROMIUM, 'Chromium');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-chromium-'));
  const args = [...CHROMIUM_ARGS];
  if (fakeVideo) args.push(`--use-file-for-fake-video-capture=${fakeVideo}`);
  if (fakeAudio) args.push(`--use-file-for-fake-audio-capture=${fakeAudio}`);
  if (secureOrigin) args.push(`--unsafely-treat-insecure-origin-as-secure=${secureOrigin}`);
  const inNetns = path.join(path.dirname(new URL(import.meta.url).pathname), 'in-netns.sh');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: netns ? inNetns : CHROMIUM,
    env: netns ? { ...process.env, CHORUS_NETNS: netns, CHORUS_CHROMIUM: CHROMIUM } : process.env,
    headless: true,
    args,
    viewport: { width: 1280, height: 720 },
    timeout: 30000,
  });
  return {
    kind: 'chromium',
    async newPage() {
      // One persistent context: the first page exists already.
      const blank = context.pages().find((p) => p.url() === 'about:blank' && !p.__taken);
      const page = blank || await context.newPage();
      page.__taken = true;
      return page;
    },
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** A headless Chromium for several independent participants (one profile each). */
export async function launchChromiumPool() {
  const launched = [];
  return {
    kind: 'chromium',
    async newPage() {
      const browser = await launchChromium();
      launched.push(browser);
      return browser.newPage();
    },
    async close() {
      await Promise.all(launched.map((b) => b.close()));
    },
  };
}

/** A headless Firefox ESR driven over WebDriver BiDi with fake media. */
export async function launchFirefox() {
  requireExecutable(FIREFOX, 'Firefox ESR');
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    protocol: 'webDriverBiDi',
    timeout: 60000,
    // The window's own size (the page gets about 1280x720 below ESR 140's 86-px toolbar), not
    // an emulated viewport: puppeteer's `setViewport` also sends
    // `emulation.setScreenOrientationOverride`, which Firefox ESR 140 does not know (153 does).
    defaultViewport: null,
    env: { ...process.env, MOZ_REMOTE_SETTINGS_DEVTOOLS: '1', MOZ_HEADLESS_WIDTH: '1280', MOZ_HEADLESS_HEIGHT: '806' },
    extraPrefsFirefox: {
      'media.navigator.streams.fake': true,
      'media.navigator.permission.disabled': true,
      'media.navigator.permission.fake': true,
      'media.peerconnection.ice.loopback': true,
      'media.peerconnection.ice.obfuscate_host_addresses': false,
      'media.autoplay.default': 0,
      'services.settings.server': 'http://127.0.0.1:1/',
      'network.proxy.type': 0,
      'browser.shell.checkDefaultBrowser': false,
      'app.update.enabled': false,
      'toolkit.telemetry.enabled': false,
      'datareporting.policy.dataSubmissionEnabled': false,
    },
  });
  return {
    kind: 'firefox',
    async newPage() {
      const page = await browser.newPage();
      const size = await page.evaluate(() => [window.innerWidth, window.innerHeight]);
      if (size[0] !== 1280) throw new Error(`Firefox's page is ${size.join('x')}, not 1280 wide`);
      return page;
    },
    async close() {
      await browser.close().catch(() => {});
    },
  };
}
