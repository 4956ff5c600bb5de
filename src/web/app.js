// Entry point of the Chorus web client: fills the icons, starts the lobby (room from
// `?room=`, token from `?token=`), turns a Join into a Call with its CallView, and shows the
// right screen when a call ends — with Rejoin, or back to the lobby.

import { installDebug } from './debug.js';
import { fillIcons } from './icons.js';
import { endedText } from './messages.js';
import { hideNotice, showNotice, toast } from './notice.js';
import { Call } from './call.js';
import { CallView } from './callview.js';
import { Lobby } from './lobby.js';

const params = new URLSearchParams(window.location.search);
const token = params.get('token');

const app = { call: null, view: null, last: null };
installDebug(app);
fillIcons();

const lobby = new Lobby({ room: params.get('room'), onJoin: startCall });

function startCall({ room, name, tracks, muted }) {
  hideNotice();
  app.last = { room, name, muted };
  const url = new URL(window.location.href);
  url.searchParams.set('room', room);
  window.history.replaceState(null, '', url);
  const call = new Call({ room, name, token, tracks, muted });
  app.call = call;
  app.view = new CallView(call, { onEnded: () => ended(call) });
  call.start();
}

function ended(call) {
  call.media.release();
  if (app.view) app.view.destroy();
  app.view = null;
  const detail = call.detail;
  if (detail.reason === 'refused' && (detail.code === 'bad-room' || detail.code === 'bad-name')) {
    const text = endedText(detail, call.room).text;
    lobby.show({ field: detail.code === 'bad-room' ? 'room-error' : 'name-error', text });
    return;
  }
  const { title, text } = endedText(detail, call.room);
  const actions = [];
  if (detail.reason !== 'kicked' && detail.reason !== 'refused') {
    actions.push({ label: detail.reason === 'room-full' ? 'Try again' : 'Rejoin', primary: true, onClick: () => rejoin() });
  }
  actions.push({
    label: detail.reason === 'room-full' ? 'Choose another room' : 'Back to the lobby',
    primary: actions.length === 0,
    onClick: () => {
      hideNotice();
      lobby.show();
    },
  });
  showNotice(title, text, actions);
}

async function rejoin() {
  hideNotice();
  const tracks = await lobby.reopenForRejoin();
  if (!app.last) return;
  startCall({ ...app.last, tracks });
}

window.addEventListener('unhandledrejection', (event) => {
  toast(`Something went wrong: ${event.reason && event.reason.message ? event.reason.message : event.reason}`);
});

lobby.show();
