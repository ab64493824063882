const QUOTE = 34; // "
const BACKSLASH = 92;
const OPEN_OBJECT = 123; // {
const CLOSE_OBJECT = 125;
const OPEN_ARRAY = 91; // [
const CLOSE_ARRAY = 93;
const COMMA = 44;

/** The index just past the string that opens at `start` (a quote). */
function stringEnd(text: string, start: number): number {
  let at = start + 1;
  for (;;) {
    const quote = text.indexOf('"', at);
    if (quote < 0) return text.length;
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
    at = quote + 1;
  }
}

function skipSpace(text: string, at: number): number {
  while (at < text.length && (text[at] === ' ' || text[at] === '\n' || text[at] === '\r' || text[at] === '\t')) at++;
  return at;
}

/** The index just past the JSON value that starts at `start`. */
function valueEnd(text: string, start: number): number {
  const first = text.charCodeAt(start);
  if (first === QUOTE) return stringEnd(text, start);
  if (first !== OPEN_OBJECT && first !== OPEN_ARRAY) {
    let at = start;
    while (at < text.length && !/[\s,}\]]/.test(text[at])) at++;
    return at;
  }
  let depth = 0;
  for (let at = start; at < text.length; at++) {
    const code = text.charCodeAt(at);
    if (code === QUOTE) at = stringEnd(text, at) - 1;
    else if (code === OPEN_OBJECT || code === OPEN_ARRAY) depth++;
    else if ((code === CLOSE_OBJECT || code === CLOSE_ARRAY) && --depth === 0) return at + 1;
  }
  return text.length;
}

function isModelKey(text: string, start: number, end: number): boolean {
  const key = text.slice(start, end);
  if (key === '"model"') return true;
  // An escaped spelling of the same key ("mod\u0065l") is rare but still the key.
  return key.includes('\\') && JSON.parse(key) === 'model';
}

/**
 * A JSON object's top-level `model` set to `model`, by rewriting that one value in the text: the rest
 * of the answer (choices, usage, …) is passed on byte for byte, without parsing and re-serialising it.
 * Text that is not an object, or has no top-level `model`, comes back as it was.
 */
export function withModelField(text: string, model: string): string {
  const start = skipSpace(text, 0);
  if (text.charCodeAt(start) !== OPEN_OBJECT) return text;
  let depth = 0;
  let expectKey = false;
  for (let at = start; at < text.length; at++) {
    const code = text.charCodeAt(at);
    if (code === QUOTE) {
      const end = stringEnd(text, at);
      if (depth === 1 && expectKey && isModelKey(text, at, end)) {
        const colon = skipSpace(text, end);
        if (text[colon] !== ':') return text;
        const value = skipSpace(text, colon + 1);
        return text.slice(0, value) + JSON.stringify(model) + text.slice(valueEnd(text, value));
      }
      expectKey = false;
      at = end - 1;
    } else if (code === OPEN_OBJECT || code === OPEN_ARRAY) {
      depth++;
      expectKey = depth === 1;
    } else if (code === CLOSE_OBJECT || code === CLOSE_ARRAY) {
      depth--;
    } else if (code === COMMA && depth === 1) {
      expectKey = true;
    }
  }
  return text;
}
