// The pages' dictionary: every text a person reads comes from
// /i18n/<language>.json through t(). The language is the one saved by the
// language switch, else the browser's first zh or en preference, else zh-CN.

export const languages = ['zh-CN', 'en'];
const savedKey = 'gridmap.language';

let current = 'zh-CN';
let dictionary = {};

// chosenLanguage is the language to show: the saved choice, else the first
// of navigator.languages that we have, else zh-CN.
export function chosenLanguage() {
  let saved = null;
  try {
    saved = localStorage.getItem(savedKey);
  } catch {
    // Storage can be refused (private modes, policies): use the browser's.
  }
  if (languages.includes(saved)) return saved;
  for (const tag of navigator.languages ?? [navigator.language]) {
    const lower = String(tag).toLowerCase();
    if (lower.startsWith('zh')) return 'zh-CN';
    if (lower.startsWith('en')) return 'en';
  }
  return 'zh-CN';
}

// language is the language shown now.
export function language() {
  return current;
}

// useLanguage loads lang's dictionary and translates the page; save keeps
// the choice for the next visit. Rejects when the dictionary cannot load.
export async function useLanguage(lang, { save = false } = {}) {
  if (!languages.includes(lang)) throw new Error(`no dictionary for language ${lang}`);
  const res = await fetch(`/i18n/${lang}.json`, { credentials: 'same-origin' });
  if (!res.ok) throw new Error(`dictionary ${lang}: HTTP ${res.status}`);
  dictionary = await res.json();
  current = lang;
  if (save) {
    try {
      localStorage.setItem(savedKey, lang);
    } catch {
      // Not kept, but still shown.
    }
  }
  document.documentElement.lang = lang;
  translate(document);
}

// t is the text for key in the current language, with {name} replaced by
// params.name. A missing key shows as itself, so it is seen and fixed;
// with a fallback (for names that come with the data, such as a source
// the dictionary may not know) it shows the fallback instead.
export function t(key, params = {}, fallback = undefined) {
  const text = dictionary[key];
  if (typeof text !== 'string') {
    if (fallback !== undefined) return String(fallback);
    console.warn(`i18n: no text for ${key} in ${current}`);
    return key;
  }
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

// translate fills every element under root that names a key:
// data-i18n sets its text, data-i18n-aria-label its aria-label,
// data-i18n-placeholder its placeholder.
export function translate(root) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-aria-label]')) {
    el.setAttribute('aria-label', t(el.dataset.i18nAriaLabel));
  }
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
}
