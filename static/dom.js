// Building the pages' DOM: elements from a tag, properties and children,
// with empty children (null, undefined, false) left out and lists flattened.

// el makes an element: "class" and "dataset" are set as such, "on..."
// properties become listeners, other known properties are set, the rest
// are attributes.
export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null) continue;
    if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k in e) e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}

// fill replaces root's children, skipping empty ones and flattening lists.
export function fill(root, ...children) {
  root.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

// leaving tells whether the page is being left (a navigation has begun or
// the page is hidden for good): the browser then aborts the page's
// requests, which is no failure to report.
let left = false;
addEventListener('beforeunload', () => { left = true; });
addEventListener('pagehide', () => { left = true; });
export function leaving() {
  return left;
}
