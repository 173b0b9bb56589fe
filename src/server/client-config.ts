import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import type { StratusConfig } from '../core/config.js';

function atomicWrite(path: string, data: string): void {
  writeFileSync(path + '.tmp', data, { mode: 0o600 });
  renameSync(path + '.tmp', path);
}

/** Writes DIR/clouds.yaml and DIR/{admin,demo}-openrc.sh (CONTRACT.md). */
export function writeClientConfig(cfg: StratusConfig, adminPassword: string, demoPassword: string | null): void {
  const authUrl = `${cfg.publicUrl}/identity/v3`;
  const cloud = (user: string, project: string, password: string) => ({
    auth: { auth_url: authUrl, username: user, password, project_name: project, user_domain_name: 'Default', project_domain_name: 'Default' },
    region_name: cfg.region,
    interface: 'public',
    identity_api_version: 3,
  });
  const clouds: Record<string, unknown> = { 'stratus-admin': cloud('admin', 'admin', adminPassword) };
  if (demoPassword) clouds['stratus-demo'] = cloud('demo', 'demo', demoPassword);
  atomicWrite(join(cfg.dataDir, 'clouds.yaml'), YAML.stringify({ clouds }));
  const rc = (user: string, project: string, password: string) =>
    [
      '# Source this file to use the openstack CLI against Stratus.',
      `export OS_AUTH_URL=${authUrl}`,
      'export OS_IDENTITY_API_VERSION=3',
      `export OS_USERNAME=${user}`,
      `export OS_PASSWORD='${password.replace(/'/g, `'\\''`)}'`,
      `export OS_PROJECT_NAME=${project}`,
      'export OS_USER_DOMAIN_NAME=Default',
      'export OS_PROJECT_DOMAIN_NAME=Default',
      `export OS_REGION_NAME=${cfg.region}`,
      'export OS_INTERFACE=public',
      '',
    ].join('\n');
  atomicWrite(join(cfg.dataDir, 'admin-openrc.sh'), rc('admin', 'admin', adminPassword));
  if (demoPassword) atomicWrite(join(cfg.dataDir, 'demo-openrc.sh'), rc('demo', 'demo', demoPassword));
}
