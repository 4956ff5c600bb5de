// What the call screen shows, derived from a Call's state and nothing else: the people list
// (this person first), the video tiles (one per person, one per shared screen) and the remote
// audio to play. Pure functions: they read the call, never change it, and touch no DOM.

/** The tracks one participant publishes (from the call's remote tracks). */
function tracksOf(call, peerId) {
  return [...call.remote.values()].filter((t) => t.peerId === peerId);
}

/** The people in the call, this person first, the others by name. */
export function peopleOf(call) {
  const self = {
    peerId: call.selfId || 'self',
    name: call.name,
    self: true,
    micMuted: call.media.isMuted('microphone'),
    cameraOff: call.media.isMuted('camera'),
    sharing: call.media.sharingScreen,
  };
  const others = [...call.participants.values()].map((p) => {
    const tracks = tracksOf(call, p.peerId);
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

/** This person's tiles: the camera one, and the screen they share. */
function ownTiles(call) {
  const { camera: cam, microphone: mic, screen } = call.media.entries;
  const peerId = call.selfId || 'self';
  const tiles = [{
    key: 'self',
    peerId,
    name: call.name,
    self: true,
    source: 'camera',
    video: cam ? cam.track : null,
    audio: null,
    videoMuted: !cam || cam.muted,
    audioMuted: !mic || mic.muted,
    playable: true,
    speakerRank: rankOf(call, peerId),
  }];
  if (screen) {
    tiles.push({
      key: 'self-screen',
      peerId,
      name: call.name,
      self: true,
      source: 'screen',
      video: screen.track,
      audio: null,
      videoMuted: false,
      audioMuted: true,
      playable: true,
    });
  }
  return tiles;
}

/**
 * The people the server names as speaking, loudest first (`active-speakers`); empty until it
 * names anyone. Which tiles deserve the high video layer in a large room starts here.
 */
export function speakersOf(call) {
  return (call.speakers || []).map((s) => s.peerId);
}

/** One participant's tiles: camera and microphone together, then each shared screen. */
function participantTiles(call, p) {
  const tracks = tracksOf(call, p.peerId);
  const camera = tracks.find((t) => t.source === 'camera');
  const microphone = tracks.find((t) => t.kind === 'audio');
  const tiles = [{
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
    // Place in the server's list of speakers (0 the loudest), null when not speaking.
    speakerRank: rankOf(call, p.peerId),
  }];
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
  return tiles;
}

function rankOf(call, peerId) {
  const rank = speakersOf(call).indexOf(peerId);
  return rank < 0 ? null : rank;
}

/** The video tiles: one per person (camera + microphone) and one per shared screen. */
export function tilesOf(call) {
  const tiles = ownTiles(call);
  for (const p of call.participants.values()) tiles.push(...participantTiles(call, p));
  return tiles;
}

/** Remote audio tracks to play, by track id. */
export function audioTracksOf(call) {
  const out = new Map();
  for (const t of call.remote.values()) {
    if (t.kind === 'audio' && t.track) out.set(t.trackId, t.track);
  }
  return out;
}
