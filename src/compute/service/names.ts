/** Nova's hostname sanitization: lower-case, [a-z0-9-], no leading/trailing '-', at most 63 chars. */
export function sanitizeHostname(name: string, fallback: string): string {
  const h = name
    .toLowerCase()
    .replace(/[ _.]/g, '-')
    .replace(/[^a-z0-9-]/g, '')
    .replace(/-+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return h || fallback;
}
