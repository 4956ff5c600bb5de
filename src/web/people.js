// The participant list: everyone in the room with their microphone, camera and screen-share
// state, this person first, and the count shown in the call header and on the People tab.

import { el, svg } from './dom.js';
import { icons } from './icons.js';
import { hueOf, initials } from './names.js';

function stateIcon(icon, label) {
  const span = el('span', { class: 'person-state', role: 'img', 'aria-label': label, title: label });
  span.append(svg(icon));
  return span;
}

export class PeopleList {
  constructor(list) {
    this.list = list;
  }

  /** Renders `people` (see peopleOf in viewmodel.js). */
  render(people) {
    this.list.replaceChildren(...people.map((p) => {
      const avatar = el('span', { class: 'person-avatar', 'aria-hidden': 'true', text: initials(p.name) });
      avatar.style.setProperty('--hue', String(hueOf(p.peerId + p.name)));
      const states = el('span', { class: 'person-states' },
        p.sharing ? stateIcon(icons.screen, 'Sharing screen') : null,
        stateIcon(p.cameraOff ? icons.cameraOff : icons.camera, p.cameraOff ? 'Camera off' : 'Camera on'),
        stateIcon(p.micMuted ? icons.micOff : icons.mic, p.micMuted ? 'Microphone muted' : 'Microphone on'));
      return el('li', { class: 'person', 'data-peer-id': p.peerId },
        avatar,
        el('span', { class: 'person-name', text: p.self ? `${p.name} (you)` : p.name }),
        states);
    }));
  }
}
