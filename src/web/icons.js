// Inline SVG icons (24x24, stroke = currentColor) for the controls and tiles, and the helper
// that puts one into an element. Constants only: no user text ever reaches this markup.

import { svg } from './dom.js';

const wrap = (body) => `<svg viewBox="0 0 24 24" width="24" height="24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" focusable="false">${body}</svg>`;

export const icons = {
  mic: wrap('<rect x="9" y="3" width="6" height="11" rx="3"/><path d="M5 11a7 7 0 0 0 14 0"/><path d="M12 18v3"/>'),
  micOff: wrap('<path d="M15 9.3V6a3 3 0 0 0-5.7-1.3"/><path d="M9 9v2a3 3 0 0 0 4.9 2.3"/><path d="M5 11a7 7 0 0 0 11.5 5.3M19 11a7 7 0 0 1-.6 2.8"/><path d="M12 18v3"/><path d="M3 3l18 18"/>'),
  camera: wrap('<rect x="3" y="6" width="13" height="12" rx="2"/><path d="M16 10l5-3v10l-5-3"/>'),
  cameraOff: wrap('<path d="M16 16v1a1 1 0 0 1-1 1H5a2 2 0 0 1-2-2V8a2 2 0 0 1 2-2h1m4 0h5a1 1 0 0 1 1 1v3.3l5-3.3v10"/><path d="M3 3l18 18"/>'),
  screen: wrap('<rect x="2" y="4" width="20" height="13" rx="2"/><path d="M8 21h8M12 17v4"/><path d="M9 10l3-3 3 3M12 7v6"/>'),
  screenStop: wrap('<rect x="2" y="4" width="20" height="13" rx="2"/><path d="M8 21h8M12 17v4"/><path d="M9.5 8l5 5M14.5 8l-5 5"/>'),
  chat: wrap('<path d="M21 12a8 8 0 0 1-11.6 7.1L4 20l1-4.6A8 8 0 1 1 21 12z"/>'),
  people: wrap('<circle cx="9" cy="8" r="3.5"/><path d="M2.5 20a6.5 6.5 0 0 1 13 0"/><path d="M16 4.6a3.5 3.5 0 0 1 0 6.8M18 14.2a6.5 6.5 0 0 1 3.5 5.8"/>'),
  leave: wrap('<path d="M4.3 14.6c4.6-4.1 10.8-4.1 15.4 0l-1.6 2.6-3.2-1.1-.4-2.3a9.8 9.8 0 0 0-5 0l-.4 2.3-3.2 1.1z" fill="currentColor"/>'),
  copy: wrap('<rect x="9" y="9" width="12" height="12" rx="2"/><path d="M5 15H4a1 1 0 0 1-1-1V4a1 1 0 0 1 1-1h10a1 1 0 0 1 1 1v1"/>'),
  shuffle: wrap('<path d="M16 3h5v5M4 20L21 3M21 16v5h-5M15 15l6 6M4 4l5 5"/>'),
  close: wrap('<path d="M6 6l12 12M18 6L6 18"/>'),
  send: wrap('<path d="M22 2L11 13"/><path d="M22 2l-7 20-4-9-9-4z"/>'),
  logo: `<svg viewBox="0 0 32 32" width="32" height="32" aria-hidden="true" focusable="false"><rect width="32" height="32" rx="9" fill="#6d5dfc"/><path d="M9 20.5a4.5 4.5 0 0 1 0-9M14 23a7 7 0 0 1 0-14M19 20.5a4.5 4.5 0 0 0 0-9M24 23a7 7 0 0 0 0-14" fill="none" stroke="#fff" stroke-width="2.2" stroke-linecap="round"/></svg>`,
};

/** Replaces the content of `element` with icon `name` (and remembers which one it shows). */
export function setIcon(element, name) {
  if (!element || element.dataset.shown === name || !icons[name]) return;
  element.dataset.shown = name;
  element.replaceChildren(svg(icons[name]));
}

/** Fills every `[data-icon]` placeholder of the page. */
export function fillIcons(root = document) {
  for (const element of root.querySelectorAll('[data-icon]')) setIcon(element, element.dataset.icon);
}
