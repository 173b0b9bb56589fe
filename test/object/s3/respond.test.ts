/**
 * Long S3 operations keep the connection alive: after the grace period the
 * 200 and the XML declaration go out, then spaces, then the result or an
 * <Error> document in the 200 body (what S3 clients look for).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { S3Error } from '../../../src/object/s3/errors.js';
import { longRunning } from '../../../src/object/s3/respond.js';

describe('S3 long-running responses', () => {
  let server: Server;
  let base: string;
  before(async () => {
    server = createServer((req, res) => {
      const fail = req.url?.includes('fail');
      const delay = req.url?.includes('slow') ? 250 : 0;
      void longRunning(
        res, 'REQ1', '/b/k',
        async () => {
          await new Promise((r) => setTimeout(r, delay));
          if (fail) throw new Error('boom');
          return { xml: '<?xml version="1.0" encoding="UTF-8"?>\n<Done>yes</Done>' };
        },
        () => new S3Error('InvalidPart', 'a part vanished'),
        50, 20,
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it('a quick operation answers normally, with its own status on error', async () => {
    const ok = await fetch(`${base}/quick`);
    assert.equal(ok.status, 200);
    assert.equal(await ok.text(), '<?xml version="1.0" encoding="UTF-8"?>\n<Done>yes</Done>');
    const bad = await fetch(`${base}/quick-fail`);
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /<Code>InvalidPart<\/Code>/);
  });

  it('a slow operation sends 200 early, whitespace, then the result or an Error document', async () => {
    const ok = await fetch(`${base}/slow`);
    assert.equal(ok.status, 200);
    const text = await ok.text();
    assert.match(text, /^<\?xml version="1.0" encoding="UTF-8"\?>\n +<Done>yes<\/Done>$/);
    const bad = await fetch(`${base}/slow-fail`);
    assert.equal(bad.status, 200);
    const bt = await bad.text();
    assert.match(bt, /^<\?xml[^>]*\?>\n +<Error><Code>InvalidPart<\/Code>/);
    assert.match(bt, /<RequestId>REQ1<\/RequestId>/);
  });
});
