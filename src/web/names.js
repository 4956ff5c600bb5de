// Room and display names: the random room name the lobby suggests, and the rules the server
// applies (room: 1-64 of [A-Za-z0-9_.-]; name: 1-64 characters, no control characters), so
// the lobby can explain a mistake before the server refuses it.

const ADJECTIVES = [
  'amber', 'brave', 'bright', 'calm', 'clever', 'cosy', 'eager', 'gentle', 'golden', 'happy',
  'jolly', 'keen', 'lively', 'lucky', 'mellow', 'merry', 'misty', 'noble', 'quiet', 'rapid',
  'rosy', 'silver', 'sunny', 'swift', 'tidy', 'vivid', 'warm', 'witty',
];
const NOUNS = [
  'badger', 'beacon', 'canyon', 'comet', 'falcon', 'fern', 'harbor', 'heron', 'island', 'lagoon',
  'lantern', 'maple', 'meadow', 'orchard', 'otter', 'panda', 'pebble', 'puffin', 'river',
  'robin', 'summit', 'thistle', 'tiger', 'walrus', 'willow', 'zebra',
];

function pick(list) {
  const n = new Uint32Array(1);
  crypto.getRandomValues(n);
  return list[n[0] % list.length];
}

/** A fresh, speakable room name such as `sunny-otter-417`. */
export function randomRoomName() {
  const n = new Uint32Array(1);
  crypto.getRandomValues(n);
  return `${pick(ADJECTIVES)}-${pick(NOUNS)}-${100 + (n[0] % 900)}`;
}

/** Why `room` is not a valid room name, or null when it is. */
export function roomProblem(room) {
  if (!room) return 'Enter a room name.';
  if (room.length > 64) return 'Room names are at most 64 characters.';
  if (!/^[A-Za-z0-9_.-]+$/.test(room)) {
    return 'Use letters, digits, dots, dashes and underscores only (no spaces).';
  }
  return null;
}

/** Why `name` is not a valid display name, or null when it is. */
export function nameProblem(name) {
  const trimmed = name.trim();
  if (!trimmed) return 'Enter the name the others will see.';
  if ([...trimmed].length > 64) return 'Names are at most 64 characters.';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(trimmed)) return 'Names cannot contain control characters.';
  return null;
}

/** Up to two initials for an avatar. */
export function initials(name) {
  const words = name.trim().split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? [words[0], words[words.length - 1]] : words;
  return letters.map((w) => [...w][0] || '').join('').toUpperCase() || '?';
}

/** A stable hue (0-359) for a peer, so each person keeps a colour. */
export function hueOf(text) {
  let h = 0;
  for (const ch of text) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

/** The invite link for `room`: this page's address with `?room=NAME`. */
export function inviteLink(room) {
  const url = new URL(window.location.href);
  url.search = '';
  url.hash = '';
  url.searchParams.set('room', room);
  return url.toString();
}
