// The chat panel: the room's messages (the history from `joined`, then live ones), a box to
// write in, and the unread count shown on the Chat button while the panel is closed. Text is
// only ever inserted as text; web addresses become links that open in a new tab.

import { el } from './dom.js';

const URL_PATTERN = /(https?:\/\/[^\s<>"]+)/g;

function linkified(text) {
  const parts = text.split(URL_PATTERN);
  return parts.map((part, i) => (i % 2 === 1
    ? el('a', { href: part, target: '_blank', rel: 'noopener noreferrer', text: part })
    : document.createTextNode(part)));
}

function clock(ts) {
  return new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

export class ChatPanel {
  /** `onSend(text)` returns false when the message could not be sent. */
  constructor({ list, form, input, badge, empty, onSend }) {
    this.list = list;
    this.input = input;
    this.badge = badge;
    this.empty = empty;
    this.onSend = onSend;
    this.open = false;
    this.unread = 0;
    this.selfId = null;
    this.seen = new Set();
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.submit();
    });
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey) {
        event.preventDefault();
        this.submit();
      }
    });
  }

  submit() {
    const text = this.input.value.trim();
    if (!text) return;
    if (this.onSend(text)) {
      this.input.value = '';
    }
  }

  /** Replaces the messages with the room's history (on every join). */
  setHistory(messages, selfId, countUnread) {
    this.selfId = selfId;
    this.list.replaceChildren();
    this.seen.clear();
    for (const m of messages) this.append(m, countUnread);
    this.refresh();
  }

  add(message) {
    this.append(message, message.from !== this.selfId);
    this.refresh();
  }

  append(m, countUnread) {
    if (this.seen.has(m.id)) return;
    this.seen.add(m.id);
    const mine = m.from === this.selfId;
    const nearBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 80;
    const item = el('li', { class: mine ? 'msg mine' : 'msg', 'data-id': m.id },
      el('div', { class: 'msg-meta' },
        el('span', { class: 'msg-from', text: mine ? 'You' : m.name }),
        el('time', { datetime: new Date(m.ts).toISOString(), text: clock(m.ts) })),
      el('p', { class: 'msg-text' }, ...linkified(m.text)));
    this.list.append(item);
    if (nearBottom || mine) this.list.scrollTop = this.list.scrollHeight;
    if (!this.open && countUnread) this.unread += 1;
  }

  setOpen(open) {
    this.open = open;
    if (open) {
      this.unread = 0;
      this.list.scrollTop = this.list.scrollHeight;
    }
    this.refresh();
  }

  refresh() {
    this.badge.textContent = this.unread > 99 ? '99+' : String(this.unread);
    this.badge.hidden = this.unread === 0;
    this.badge.setAttribute('aria-label', `${this.unread} unread`);
    this.empty.hidden = this.list.children.length > 0;
  }
}
