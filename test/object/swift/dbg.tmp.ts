import { startSwiftCloud } from './helpers.js';
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
const c = await startSwiftCloud();
try {
  const A = c.demo.account, T = c.demo.token;
  mkdirSync('/tmp/swdbg/arch1/sub', { recursive: true });
  execFileSync('tar', ['-C', '/tmp/swdbg/arch1', '-czf', '/tmp/swdbg/b.tgz', 'a.txt', 'sub']);
  await c.sw('PUT', `${A}/arch2`, { token: T });
  const e = await c.sw('PUT', `${A}/arch2/pre?extract-archive=tar.gz`, { token: T, body: readFileSync('/tmp/swdbg/b.tgz'), headers: { accept: 'application/json' } });
  console.log(e.status, e.text, [...e.headers]);
} finally { await c.stop(); }
