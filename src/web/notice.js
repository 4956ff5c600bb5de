// Messages to the person, at three weights: a full-screen notice with actions (the call
// ended, the room is full, an invitation is needed), a banner over the call that does not
// block it (reconnecting…), and short toasts for passing errors. Every error the client meets
// ends up in one of these; none is only logged to the console.

import { byId, el } from './dom.js';

/** Shows the full-screen notice; `actions`: `[{label, onClick, primary}]`. */
export function showNotice(title, text, actions = []) {
  const notice = byId('notice');
  byId('notice-title').textContent = title;
  byId('notice-text').textContent = text;
  const buttons = actions.map((a) => el('button', {
    type: 'button',
    class: a.primary ? 'button primary' : 'button',
    onclick: a.onClick,
    text: a.label,
  }));
  byId('notice-actions').replaceChildren(...buttons);
  notice.hidden = false;
  if (buttons[0]) buttons[0].focus();
}

export function hideNotice() {
  byId('notice').hidden = true;
}

/** Shows (or updates) the banner; `action`: optional `{label, onClick}`. */
export function showBanner(text, action = null, level = 'warn') {
  const banner = byId('banner');
  const children = [el('span', { class: 'banner-text', text })];
  if (action) {
    children.push(el('button', { type: 'button', class: 'button small', onclick: action.onClick, text: action.label }));
  }
  banner.replaceChildren(...children);
  banner.dataset.level = level;
  banner.hidden = false;
}

export function hideBanner() {
  byId('banner').hidden = true;
}

/** A message that goes away by itself (errors stay 8 s, information 5 s). */
export function toast(text, level = 'error') {
  const box = byId('toasts');
  const item = el('div', { class: `toast ${level}`, role: level === 'error' ? 'alert' : 'status' },
    el('span', { text }),
    el('button', {
      type: 'button',
      class: 'toast-close',
      'aria-label': 'Dismiss',
      onclick: () => item.remove(),
      text: '×',
    }));
  box.append(item);
  setTimeout(() => item.remove(), level === 'error' ? 8000 : 5000);
}
