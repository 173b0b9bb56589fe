/**
 * Every page of the dashboard, by service. A page shows in the navigation
 * only when the token's catalog has its service (and, for admin pages, when
 * probing the API showed the user may use it), so a service's pages plug in
 * by adding an entry here and an API module in ../api/.
 */
import { lazy, type ComponentType, type LazyExoticComponent } from 'react';
import { COMPUTE_TYPES } from '../api/compute.js';
import { IMAGE_TYPES } from '../api/image.js';
import { NETWORK_TYPES } from '../api/network.js';
import { VOLUME_TYPES } from '../api/volume.js';
import { OBJECT_TYPES } from '../api/object.js';

export interface PageProps {
  /** Path segments after the page's own path (e.g. an instance id). */
  rest: string[];
}
export type Capability = 'identityAdmin' | 'computeAdmin';

export interface PageDef {
  path: string;
  title: string;
  group: string;
  /** Service types from the catalog; the page shows when any is present (none = always). */
  services: string[];
  needs?: Capability;
  component: LazyExoticComponent<ComponentType<PageProps>>;
}

const computePages = () => import('./compute.js');
const identityPages = () => import('./identity.js');
const networkPages = () => import('./network.js');

export const PAGES: PageDef[] = [
  { path: 'overview', title: 'Overview', group: 'Project', services: [], component: lazy(() => import('./overview.js')) },
  { path: 'compute/instances', title: 'Instances', group: 'Compute', services: COMPUTE_TYPES, component: lazy(() => computePages().then((m) => ({ default: m.InstancesPage }))) },
  { path: 'compute/keypairs', title: 'Key pairs', group: 'Compute', services: COMPUTE_TYPES, component: lazy(() => computePages().then((m) => ({ default: m.KeypairsPage }))) },
  { path: 'compute/flavors', title: 'Flavors', group: 'Compute', services: COMPUTE_TYPES, needs: 'computeAdmin', component: lazy(() => computePages().then((m) => ({ default: m.FlavorsPage }))) },
  { path: 'images', title: 'Images', group: 'Compute', services: IMAGE_TYPES, component: lazy(() => import('./images.js')) },
  { path: 'volumes', title: 'Volumes', group: 'Storage', services: VOLUME_TYPES, component: lazy(() => import('./volumes.js')) },
  { path: 'objects', title: 'Containers', group: 'Storage', services: OBJECT_TYPES, component: lazy(() => import('./objects.js')) },
  { path: 'network/topology', title: 'Topology', group: 'Network', services: NETWORK_TYPES, component: lazy(() => networkPages().then((m) => ({ default: m.TopologyPage }))) },
  { path: 'network/networks', title: 'Networks', group: 'Network', services: NETWORK_TYPES, component: lazy(() => networkPages().then((m) => ({ default: m.NetworksPage }))) },
  { path: 'network/routers', title: 'Routers', group: 'Network', services: NETWORK_TYPES, component: lazy(() => networkPages().then((m) => ({ default: m.RoutersPage }))) },
  { path: 'network/floating-ips', title: 'Floating IPs', group: 'Network', services: NETWORK_TYPES, component: lazy(() => networkPages().then((m) => ({ default: m.FloatingIpsPage }))) },
  { path: 'network/security-groups', title: 'Security groups', group: 'Network', services: NETWORK_TYPES, component: lazy(() => networkPages().then((m) => ({ default: m.SecurityGroupsPage }))) },
  { path: 'identity/projects', title: 'Projects', group: 'Identity', services: [], needs: 'identityAdmin', component: lazy(() => identityPages().then((m) => ({ default: m.ProjectsPage }))) },
  { path: 'identity/users', title: 'Users', group: 'Identity', services: [], needs: 'identityAdmin', component: lazy(() => identityPages().then((m) => ({ default: m.UsersPage }))) },
  { path: 'identity/groups', title: 'Groups', group: 'Identity', services: [], needs: 'identityAdmin', component: lazy(() => identityPages().then((m) => ({ default: m.GroupsPage }))) },
  { path: 'identity/roles', title: 'Roles', group: 'Identity', services: [], needs: 'identityAdmin', component: lazy(() => identityPages().then((m) => ({ default: m.RolesPage }))) },
  { path: 'identity/app-credentials', title: 'Application credentials', group: 'Identity', services: [], component: lazy(() => identityPages().then((m) => ({ default: m.AppCredentialsPage }))) },
];
