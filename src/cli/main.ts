#!/usr/bin/env node
import { Command } from 'commander';
import { existsSync, readFileSync, writeFileSync, unlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadConfig, parseHostPort } from '../core/config.js';
import { Cloud } from '../server/cloud.js';

const program = new Command();
program.name('stratus').description('Stratus: an OpenStack-compatible cloud in one process').version('0.1.0');

program
  .command('up')
  .description('run the whole cloud in the foreground')
  .option('--data-dir <dir>', 'where everything is kept', './data')
  .option('--listen <host:port>', 'API listener', '127.0.0.1:8700')
  .option('--s3-listen <host:port>', 'S3 API listener', '127.0.0.1:8701')
  .option('--no-seed', 'admin only: no demo project, image or networks')
  .option('--host-netns <name>', 'run this host\'s data plane inside an existing network namespace')
  .option('--config <file>', 'configuration file (default DATA_DIR/stratus.yaml)')
  .option('--log-level <level>', 'log level', undefined)
  .action(async (o: { dataDir: string; listen: string; s3Listen: string; seed: boolean; hostNetns?: string; config?: string; logLevel?: string }) => {
    const t0 = performance.now();
    const cfg = loadConfig({
      dataDir: o.dataDir,
      config: o.config,
      listen: parseHostPort(o.listen, '--listen'),
      s3Listen: parseHostPort(o.s3Listen, '--s3-listen'),
      seed: o.seed,
      hostNetns: o.hostNetns ?? null,
      ...(o.logLevel ? { logLevel: o.logLevel as 'info' } : {}),
    });
    const cloud = new Cloud(cfg);
    const pidFile = join(cfg.dataDir, 'stratus.pid');
    let stopping = false;
    const stop = async (sig: string) => {
      if (stopping) return;
      stopping = true;
      cloud.log.info({ sig }, 'stopping');
      try {
        await cloud.stop();
      } finally {
        try {
          unlinkSync(pidFile);
        } catch {
          /* already gone */
        }
        process.exit(0);
      }
    };
    process.on('SIGINT', () => void stop('SIGINT'));
    process.on('SIGTERM', () => void stop('SIGTERM'));
    try {
      await cloud.start();
    } catch (e) {
      const err = e as Error & { code?: string };
      if (err.code === 'EADDRINUSE') console.error(`stratus: cannot listen on ${o.listen}: the address is in use (is another stratus running? try --listen)`);
      else console.error(`stratus: start failed: ${err.stack ?? err.message}`);
      process.exit(1);
    }
    writeFileSync(pidFile, String(process.pid));
    cloud.log.info({ ms: Math.round(performance.now() - t0) }, 'ready');
    console.log(`stratus ready: ${cloud.identityUrl}`);
  });

program
  .command('status')
  .description('show whether the cloud in DATA_DIR is running and healthy')
  .option('--data-dir <dir>', 'data directory', './data')
  .option('--listen <host:port>', 'API listener', '127.0.0.1:8700')
  .action(async (o: { dataDir: string; listen: string }) => {
    const { host, port } = parseHostPort(o.listen, '--listen');
    const pidFile = join(resolve(o.dataDir), 'stratus.pid');
    const pid = existsSync(pidFile) ? readFileSync(pidFile, 'utf8').trim() : null;
    try {
      const r = await fetch(`http://${host}:${port}/healthz`);
      console.log(JSON.stringify({ pid, ...((await r.json()) as object) }, null, 2));
    } catch {
      console.log(JSON.stringify({ pid, status: 'down' }));
      process.exitCode = 1;
    }
  });

program
  .command('down')
  .description('stop the cloud running on DATA_DIR (by its pid file)')
  .option('--data-dir <dir>', 'data directory', './data')
  .action(async (o: { dataDir: string }) => {
    const pidFile = join(resolve(o.dataDir), 'stratus.pid');
    if (!existsSync(pidFile)) {
      console.log('stratus is not running (no pid file)');
      return;
    }
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      console.log(`no process ${pid}; removing stale pid file`);
      unlinkSync(pidFile);
      return;
    }
    for (let i = 0; i < 300; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        console.log('stopped');
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    console.error(`process ${pid} did not stop within 30 s`);
    process.exitCode = 1;
  });

program
  .command('openrc')
  .description('print the openrc of the admin or demo user')
  .argument('[who]', 'admin or demo', 'admin')
  .option('--data-dir <dir>', 'data directory', './data')
  .action((who: string, o: { dataDir: string }) => {
    const f = join(resolve(o.dataDir), `${who}-openrc.sh`);
    if (!existsSync(f)) {
      console.error(`no ${f}: has \`stratus up\` run on this data dir${who === 'demo' ? ' with seeding' : ''}?`);
      process.exitCode = 1;
      return;
    }
    process.stdout.write(readFileSync(f, 'utf8'));
  });

program.parseAsync(process.argv).catch((e: Error) => {
  console.error(`stratus: ${e.message}`);
  process.exit(1);
});
