const seen = new Map<number, string>();

/**
 * The HTTP date (RFC 7231) of a time in ms, rounded up to the second — how
 * Swift shows Last-Modified, and the object APIs with it. Formatting a Date
 * is a visible share of a small GET's CPU, and objects written together
 * share their second, so recent answers are kept (a few thousand at most).
 */
export function httpDate(ms: number): string {
  const second = Math.ceil(ms / 1000);
  let text = seen.get(second);
  if (text === undefined) {
    if (seen.size >= 4096) seen.clear();
    text = new Date(second * 1000).toUTCString();
    seen.set(second, text);
  }
  return text;
}
