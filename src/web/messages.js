// Every sentence the client shows a person about a problem or a state, in one place: what
// went wrong with the camera or microphone, why a call ended, why it is reconnecting.
// Plain words, and what to do next.

/**
 * What to tell about a device that could not be opened (`code` from devices.js): in the lobby,
 * or (`inCall`) when the person turned it on during the call.
 */
export function deviceProblem(device, code, inCall = false) {
  const what = device === 'camera' ? 'camera' : 'microphone';
  if (inCall && code === 'not-found') return `No ${what} found.`;
  switch (code) {
    case 'permission-denied':
      return `Access to your ${what} is blocked. Allow it in the browser's site settings (the icon next to the address), then reload.`;
    case 'not-found':
      return device === 'camera'
        ? 'No camera found. You can join with your microphone only.'
        : 'No microphone found. Others will not hear you.';
    case 'in-use':
      return `Your ${what} is in use by another program, or could not start. Close that program and try again.`;
    case 'insecure':
      return 'Camera and microphone need a secure page: open Chorus over https (or on localhost). You can still join to watch and chat.';
    default:
      return `Your ${what} could not be started.`;
  }
}

/** Both devices blocked: one clear sentence instead of two. */
export const BOTH_DENIED = 'Camera and microphone are blocked. Allow them in the browser\'s site settings (the icon next to the address) and reload — or join without them to watch and chat.';

/** Title and text of the screen shown when a call has ended. */
export function endedText(detail, room) {
  switch (detail.reason) {
    case 'left':
      return { title: 'You left the call', text: `You can rejoin “${room}” or start another call.` };
    case 'kicked':
      return { title: 'You were removed from the call', text: `A moderator removed you from “${room}”.` };
    case 'room-closed':
      return { title: 'The call has ended', text: `A moderator closed the room “${room}”. Rejoining opens it afresh.` };
    case 'replaced':
      return { title: 'You joined from somewhere else', text: `Your invitation to “${room}” is now in use in another tab or device; the call goes on there.` };
    case 'room-full':
      return {
        title: 'This room is full',
        text: `“${room}” already has ${detail.max || 'the most'} people in it, as many as this server allows. Try again later, or pick another room.`,
      };
    case 'refused':
      return { title: 'Could not join', text: refusalText(detail.code, detail.message) };
    default:
      return { title: 'The call has ended', text: detail.message || '' };
  }
}

function refusalText(code, message) {
  switch (code) {
    case 'auth-required':
      return 'This server only admits people with an invitation. Ask the organiser for an invite link.';
    case 'bad-token':
      return 'Your invitation is not valid for this server. Ask the organiser for a new invite link.';
    case 'token-expired':
      return 'Your invitation has expired. Ask the organiser for a new invite link.';
    case 'token-not-yet-valid':
      return 'Your invitation is not valid yet. Try again when the call is due to start.';
    case 'wrong-room':
      return 'Your invitation is for another room.';
    case 'too-many-rooms':
      return 'The server has as many rooms open as it allows. Try again later.';
    case 'bad-room':
      return 'That room name is not allowed: use letters, digits, dots, dashes and underscores.';
    case 'bad-name':
      return 'That display name is not allowed: 1–64 characters, no control characters.';
    default:
      return message || `The server refused the join (${code}).`;
  }
}

/** Banner text while the call is connecting or reconnecting. */
export function connectingText(state, detail, secondsLeft) {
  const wait = secondsLeft > 0 ? ` Trying again in ${secondsLeft} s.` : ' Trying again…';
  if (state === 'connecting' && !detail.reason) return 'Connecting…';
  switch (detail.reason) {
    case 'draining':
      return `This server is restarting for maintenance and is not taking new calls.${wait}`;
    case 'cluster':
      return `The server hosting this call could not be reached; moving the call.${wait}`;
    case 'server-restart':
      return `The server restarted.${wait}`;
    case 'media':
      return `The media connection was lost.${wait}`;
    default:
      return state === 'connecting'
        ? `Cannot reach the server.${wait}`
        : `Connection lost.${wait}`;
  }
}
