/**
 * The metadata proxy: a tiny standalone program the network agent starts
 * inside a router or DHCP namespace (`ip netns exec NS node metadata-proxy.js
 * ...`). It listens on 169.254.169.254:80 there and forwards every request to
 * the compute metadata service's unix socket, telling it who asks: the guest's
 * source address and the router or network the request came through. Whatever
 * the guest sent in those headers is dropped (a guest must not claim to be
 * another instance).
 *
 * argv: <listen-ip> <listen-port> <upstream unix socket> <header name> <header value> <pid file>
 * No imports from the rest of Stratus: it must start fast and stay small.
 */
import { createServer, request } from 'node:http';
import { writeFileSync, renameSync } from 'node:fs';

const [listenIp, listenPort, socketPath, idHeader, idValue, pidFile] = process.argv.slice(2);
if (!listenIp || !listenPort || !socketPath || !idHeader || !idValue || !pidFile) {
  process.stderr.write('usage: metadata-proxy <ip> <port> <unix socket> <header> <value> <pid file>\n');
  process.exit(2);
}
const STRIP = new Set(['x-forwarded-for', 'x-stratus-router-id', 'x-stratus-network-id', 'x-instance-id', 'x-tenant-id', 'x-instance-id-signature', 'host', 'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

const server = createServer((req, res) => {
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !STRIP.has(k)) headers[k] = v;
  headers['x-forwarded-for'] = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  headers[idHeader.toLowerCase()] = idValue;
  headers['host'] = '169.254.169.254';
  const up = request({ socketPath, method: req.method, path: req.url, headers, timeout: 30_000 }, (ur) => {
    res.writeHead(ur.statusCode ?? 502, ur.headers);
    ur.pipe(res);
  });
  up.on('timeout', () => up.destroy(new Error('upstream timeout')));
  up.on('error', () => {
    if (!res.headersSent) {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('metadata service unavailable\n');
    } else res.destroy();
  });
  req.pipe(up);
});
server.keepAliveTimeout = 5_000;
server.on('error', (e) => {
  process.stderr.write(`metadata proxy: ${e.message}\n`);
  process.exit(1);
});
server.listen(Number(listenPort), listenIp, () => {
  // the pid file appears only once the proxy listens: the agent waits for it
  writeFileSync(`${pidFile}.tmp`, `${process.pid}\n`);
  renameSync(`${pidFile}.tmp`, pidFile);
});
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => process.exit(0));
