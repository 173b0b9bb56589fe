import type { ServerResponse } from 'node:http';
import { S3Error } from './errors.js';
import { el, esc } from './xml.js';

/** Headers every response carries. */
export function baseHeaders(id: string): Record<string, string> {
  return { 'x-amz-request-id': id, 'x-amz-id-2': id, server: 'Stratus' };
}

/** Sends an XML document (or nothing for HEAD). */
export function sendXml(res: ServerResponse, id: string, status: number, xml: string, headers: Record<string, string> = {}, head = false): void {
  const body = Buffer.from(xml, 'utf8');
  res.writeHead(status, { ...baseHeaders(id), 'content-type': 'application/xml', 'content-length': String(body.length), ...headers });
  res.end(head ? undefined : body);
}

/** Sends an empty response. */
export function sendEmpty(res: ServerResponse, id: string, status: number, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...baseHeaders(id), 'content-length': '0', ...headers });
  res.end();
}

/** `<Error>` document body for an S3 error. */
export function errorXml(e: S3Error, resource: string, id: string): string {
  const extra = Object.entries(e.extra)
    .map(([k, v]) => el(k, v))
    .join('');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${esc(e.code)}</Code><Message>${esc(e.message)}</Message>${extra}<Resource>${esc(resource)}</Resource><RequestId>${esc(id)}</RequestId></Error>`;
}

/**
 * Renders an S3 error. HEAD and 304 answers carry no body (S3 sends only
 * the status, which is all clients can see of a HEAD error).
 */
export function sendError(res: ServerResponse, id: string, e: S3Error, resource: string, head: boolean): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers: Record<string, string> = { ...baseHeaders(id), ...e.headers };
  if (e.code === 'InvalidRange' && e.extra.ActualObjectSize) headers['content-range'] = `bytes */${e.extra.ActualObjectSize}`;
  if (e.status === 304) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  const body = Buffer.from(errorXml(e, resource, id), 'utf8');
  res.writeHead(e.status, { ...headers, 'content-type': 'application/xml', 'content-length': String(body.length) });
  res.end(head ? undefined : body);
}

/**
 * Runs a long operation (CompleteMultipartUpload, a large copy) the way S3
 * does: if it is not done within `graceMs`, the `200` status and the XML
 * declaration go out and a space follows every `everyMs` so the client's
 * read timeout does not fire; the result — or an `<Error>` document, which
 * clients check for in a 200 body — ends the response. A quick operation
 * gets an ordinary response with its own status.
 */
export async function longRunning(
  res: ServerResponse,
  id: string,
  resource: string,
  op: () => Promise<{ xml: string; headers?: Record<string, string> }>,
  mapError: (e: unknown) => S3Error,
  graceMs = 2000,
  everyMs = 5000,
): Promise<void> {
  let started = false;
  let timer: NodeJS.Timeout | null = setTimeout(function tick() {
    if (!started) {
      started = true;
      res.writeHead(200, { ...baseHeaders(id), 'content-type': 'application/xml' });
      res.write('<?xml version="1.0" encoding="UTF-8"?>\n');
    } else res.write(' ');
    timer = setTimeout(tick, everyMs);
  }, graceMs);
  let result: { xml: string; headers?: Record<string, string> } | null = null;
  let err: S3Error | null = null;
  try {
    result = await op();
  } catch (e) {
    err = mapError(e);
  } finally {
    if (timer) clearTimeout(timer);
  }
  if (!started) {
    if (err) sendError(res, id, err, resource, false);
    else sendXml(res, id, 200, result!.xml, result!.headers);
    return;
  }
  const body = err ? errorXml(err, resource, id) : result!.xml;
  res.end(body.replace(/^<\?xml[^>]*\?>\n?/, ''));
}
