// Local capture: opening the microphone and camera (each on its own, so a missing camera never
// costs the microphone), the screen, listing devices for the pickers, and turning a browser's
// media error into a code the interface can explain. It does not publish anything.

/** The camera resolution asked for; browsers and the fake devices of the tests scale down. */
const VIDEO = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30, max: 30 } };
const AUDIO = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

/** Why capture failed: `permission-denied`, `not-found`, `in-use`, `insecure` or `failed`. */
export function mediaErrorCode(error) {
  switch (error && error.name) {
    case 'NotAllowedError':
    case 'PermissionDeniedError':
    case 'SecurityError':
      return 'permission-denied';
    case 'NotFoundError':
    case 'DevicesNotFoundError':
    case 'OverconstrainedError':
      return 'not-found';
    case 'NotReadableError':
    case 'TrackStartError':
    case 'AbortError':
      return 'in-use';
    default:
      return 'failed';
  }
}

/** True when this page may ask for camera and microphone at all (https or localhost). */
export function captureAvailable() {
  return Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

function audioConstraints(deviceId) {
  return deviceId ? { ...AUDIO, deviceId: { exact: deviceId } } : AUDIO;
}

function videoConstraints(deviceId) {
  return deviceId ? { ...VIDEO, deviceId: { exact: deviceId } } : VIDEO;
}

async function capture(constraints) {
  return navigator.mediaDevices.getUserMedia(constraints);
}

/**
 * Opens the microphone and the camera. Resolves `{mic, camera, micError, cameraError}` where a
 * track is null when it could not be opened and its error says why. Never rejects.
 */
export async function openLocalMedia({ micId = '', cameraId = '', mic = true, camera = true } = {}) {
  const result = { mic: null, camera: null, micError: null, cameraError: null };
  if (!captureAvailable()) {
    if (mic) result.micError = 'insecure';
    if (camera) result.cameraError = 'insecure';
    return result;
  }
  if (!mic && !camera) return result;
  try {
    // One request for both: one permission prompt in browsers that ask.
    const stream = await capture({
      audio: mic ? audioConstraints(micId) : false,
      video: camera ? videoConstraints(cameraId) : false,
    });
    result.mic = stream.getAudioTracks()[0] || null;
    result.camera = stream.getVideoTracks()[0] || null;
    return result;
  } catch (error) {
    if (!(mic && camera)) {
      if (mic) result.micError = mediaErrorCode(error);
      else result.cameraError = mediaErrorCode(error);
      return result;
    }
    // Both at once failed: ask for each alone to learn which one is missing, busy or denied.
  }
  const [audio, video] = await Promise.allSettled([
    mic ? capture({ audio: audioConstraints(micId) }) : Promise.resolve(null),
    camera ? capture({ video: videoConstraints(cameraId) }) : Promise.resolve(null),
  ]);
  if (audio.status === 'fulfilled' && audio.value) result.mic = audio.value.getAudioTracks()[0] || null;
  else if (mic) result.micError = mediaErrorCode(audio.reason);
  if (video.status === 'fulfilled' && video.value) result.camera = video.value.getVideoTracks()[0] || null;
  else if (camera) result.cameraError = mediaErrorCode(video.reason);
  return result;
}

/** Asks for a screen, window or tab. Resolves the video track, or null if the person cancelled. */
export async function openScreen() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia) {
    const error = new Error('This browser cannot share its screen.');
    error.code = 'unsupported';
    throw error;
  }
  try {
    const stream = await navigator.mediaDevices.getDisplayMedia({
      video: { frameRate: { ideal: 15, max: 30 } },
      audio: false,
    });
    const track = stream.getVideoTracks()[0];
    if (track && 'contentHint' in track) track.contentHint = 'detail';
    return track || null;
  } catch (error) {
    if (error && error.name === 'NotAllowedError') return null; // cancelled in the picker
    const wrapped = new Error(`Screen sharing failed: ${error && error.message ? error.message : error}`);
    wrapped.code = mediaErrorCode(error);
    throw wrapped;
  }
}

/** Cameras and microphones, for the pickers (labels appear once permission is granted). */
export async function listDevices() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) {
    return { cameras: [], mics: [] };
  }
  const devices = await navigator.mediaDevices.enumerateDevices();
  const named = (kind, fallback) => devices
    .filter((d) => d.kind === kind && d.deviceId)
    .map((d, i) => ({ deviceId: d.deviceId, label: d.label || `${fallback} ${i + 1}` }));
  return { cameras: named('videoinput', 'Camera'), mics: named('audioinput', 'Microphone') };
}

/** The device id a live track was opened on ('' if unknown). */
export function deviceIdOf(track) {
  if (!track || !track.getSettings) return '';
  return track.getSettings().deviceId || '';
}
