import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { StratusConfig } from '../core/config.js';
import { createLogger, type Logger } from '../core/log.js';
import { openDatabase, migrate, type Database } from '../core/db.js';
import { InProcessBus, type Bus } from '../core/bus.js';
import { QuotaEngine, quotaMigrations } from '../core/quota.js';
import { PolicyEngine, loadPolicyFile } from '../core/policy.js';
import { createApp, mountService } from '../core/http.js';
import { Identity, identityMigrations, identityPolicies, basePolicies, legacyAdminPolicies } from '../identity/index.js';
import { identityRoutes } from '../identity/api/index.js';
import { versionDoc } from '../identity/api/auth.js';
import { writeClientConfig } from './client-config.js';
import { computeMigrations } from '../compute/store/migrations.js';
import { computePolicies } from '../compute/policies.js';
import { ServerService, COMPUTE_QUOTAS } from '../compute/service/servers.js';
import { KeypairService } from '../compute/service/keypairs.js';
import { Conductor } from '../compute/service/conductor.js';
import type { ImagePort } from '../compute/service/ports.js';
import { ComputeManager } from '../compute/agent/compute-manager.js';
import type { ComputeDriver } from '../compute/drivers/driver.js';
import { QemuDriver } from '../compute/drivers/qemu-driver.js';
import { computeRoutes, legacyVersionDoc, negotiateMicroversion, versionDoc as computeVersionDoc } from '../compute/api/routes.js';
import { ApiError } from '../core/errors.js';
import { SerialConsoleProxy } from '../compute/console/serial-proxy.js';
import { MetadataServer } from '../compute/metadata/server.js';
import { buildGuestImage } from '../image/seed/build-guest-image.js';
import type { AuthContext } from '../core/context.js';
import { ImageService, imageMigrations, imagePolicies, imageRoutes } from '../image/index.js';
import { ObjectStore } from '../object/store/index.js';
import { ObjectImageStore } from '../image/drivers/object-store.js';
import { hostname } from 'node:os';
import { NetworkAgent } from '../network/agent/index.js';
import { mountSwift, objectPolicies, type SwiftMount } from '../object/swift/index.js';
import { NetworkService, networkMigrations, networkPolicies, networkRoutes } from '../network/index.js';
import { S3Server, identityCredentials, s3Policies } from '../object/s3/index.js';
import { registerDashboard } from '../dashboard/serve.js';
import { startVolumeSubsystem, volumeMigrations, volumePolicies, volumeRoutes, negotiateVolumeMicroversion, v3VersionDoc, type VolumeSubsystem } from '../volume/index.js';
import { VolumePortForCompute } from '../volume/service/for-compute.js';
import { ServerVolumes } from '../compute/service/volumes.js';
import { serveVolumeOps } from '../compute/agent/volume-ops.js';
import { volumeAttachmentRoutes, computeVolumePolicies } from '../compute/api/volume-attachments.js';

/** Health of each service, served at /healthz. */
export type ServiceState = 'starting' | 'ok' | 'degraded' | 'stopped';

/**
 * The whole cloud in one process: database, bus, policy, every service's API
 * on one HTTP listener. `start()` resolves when every service answers.
 */
export class Cloud {
  readonly log: Logger;
  readonly database: Database;
  readonly bus: Bus;
  readonly policy: PolicyEngine;
  readonly quota: QuotaEngine;
  readonly identity: Identity;
  readonly app: FastifyInstance;
  readonly states: Record<string, ServiceState> = { identity: 'starting', image: 'starting', compute: 'starting', network: 'starting' };
  /** The network service (Neutron v2.0 at /network). */
  network!: NetworkService;
  servers!: ServerService;
  conductor!: Conductor;
  computeAgent: ComputeManager | null = null;
  /** Nova's metadata API on `<data>/run/metadata.sock`, reached by guests through the network agent's proxies. */
  metadataServer: MetadataServer | null = null;
  /** This host's network agent (bridges, dnsmasq, routers, security groups); tolerates a missing network service. */
  networkAgent: NetworkAgent | null = null;
  /** The image service (Glance v2 at /image). */
  image!: ImageService;
  /** The object storage engine under the Swift and S3 APIs (`<data>/object`). */
  objectStore!: ObjectStore;
  /** The S3 API on its own listener (`config.s3Listen`). */
  s3: S3Server | null = null;
  /** How compute reaches the image service; set when the image service starts. */
  imagePort: ImagePort | null = null;
  private readonly computeDriver: ComputeDriver | null;
  private readonly startedAt = Date.now();

  /** `computeDriver` is for unit tests only: the product always runs the QEMU driver. */
  constructor(readonly config: StratusConfig, opts: { log?: Logger; computeDriver?: ComputeDriver } = {}) {
    this.computeDriver = opts.computeDriver ?? null;
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    this.log = opts.log ?? createLogger(config.dataDir, config.logLevel);
    this.database = openDatabase(config.databaseUrl, config.dataDir);
    this.bus = new InProcessBus((e, where) => this.log.error({ err: e, where }, 'bus handler failed'));
    this.policy = new PolicyEngine({ ...basePolicies, ...(config.identity.enforceScope ? {} : legacyAdminPolicies), ...identityPolicies, ...computePolicies, ...imagePolicies, ...objectPolicies, ...networkPolicies, ...s3Policies, ...volumePolicies, ...computeVolumePolicies });
    this.quota = new QuotaEngine(this.database);
    this.identity = new Identity(this.database, config, this.log, this.bus);
    this.app = createApp({ log: this.log, maxJsonBodyBytes: config.maxJsonBodyBytes, validator: this.identity.tokens, policy: this.policy });
  }

  get identityUrl(): string {
    return `${this.config.publicUrl}/identity/v3`;
  }

  async start(): Promise<void> {
    await migrate(this.database, [quotaMigrations, identityMigrations, computeMigrations, imageMigrations, networkMigrations, volumeMigrations]);
    this.policy.loadOverrides(await loadPolicyFile(join(this.config.dataDir, 'policy.yaml')));
    await this.identity.init();
    await this.identity.catalog.register('identity', 'keystone', this.identityUrl, this.config.region);

    const base = this.config.publicUrl;
    this.app.get('/healthz', async () => ({ status: Object.values(this.states).every((s) => s === 'ok') ? 'ok' : 'degraded', services: this.states, uptime_s: Math.round((Date.now() - this.startedAt) / 1000) }));
    this.app.get('/identity', async (_req, reply) => {
      reply.code(300);
      return { versions: { values: [versionDoc(`${base}/identity/v3`)] } };
    });
    mountService(this.app, this.policy, { prefix: '/identity/v3', format: 'keystone', routes: identityRoutes(this.identity, { base: `${base}/identity/v3` }, this.policy) });
    registerDashboard(this.app);
    this.states.identity = 'ok';
    this.objectStore = await ObjectStore.open({ root: join(this.config.dataDir, 'object'), logger: this.log, replicationIntervalMs: 300_000, replicationDutyCycle: 0.25, auditIntervalMs: 3_600_000, auditBytesPerSecond: 32 * 1024 * 1024, smallObjectCacheBytes: this.config.object.smallObjectCacheMiB * 1024 * 1024, packMaxBytes: this.config.object.packMaxKiB * 1024 });
    await this.startSwift();
    await this.startImage();

    // The seeded guest image is built (once, cached) before compute starts:
    // the KVM probe boots it.
    if (this.config.seed) await this.buildGuestImage();
    await this.startNetwork();
    await this.startCompute();
    await this.startNetworkAgent();
    await this.startVolume();

    if (this.config.seed) await this.seed();
    writeClientConfig(this.config, this.identity.adminPassword(), this.config.seed ? this.identity.keptSecret('demo-password') : null);
    await this.app.listen({ host: this.config.listen.host, port: this.config.listen.port });
    await this.startS3();
  }

  /** S3 API on `config.s3Listen` over the object store; EC2 credentials from identity. */
  private async startS3(): Promise<void> {
    const s3 = new S3Server({
      store: this.objectStore, credentials: identityCredentials(this.identity), policy: this.policy, region: this.config.region, log: this.log,
      hostNames: [this.config.s3Listen.host, new URL(this.config.publicUrl).hostname],
    });
    await s3.listen(this.config.s3Listen.host, this.config.s3Listen.port);
    this.s3 = s3;
  }

  /** Image API (Glance v2) at /image; compute reaches it in process through `imagePort`. */
  private async startImage(): Promise<void> {
    this.image = new ImageService(this.database, this.config, this.log, this.bus, this.quota, this.policy);
    if (this.config.image.store === 'object') this.image.useStore(new ObjectImageStore(this.objectStore, join(this.config.dataDir, 'images', 'object-cache')));
    await this.image.init();
    const root = `${this.config.publicUrl}/image`;
    mountService(this.app, this.policy, { prefix: '/image', format: 'glance', routes: imageRoutes(this.image, this.policy, { root }) });
    await this.identity.catalog.register('image', 'glance', root, this.config.region);
    this.imagePort = this.image;
    this.seedImage = (ctx, path) => this.image.seedGuestImage(ctx, path);
    this.states.image = 'ok';
  }

  /** Swift API at /object/v1/AUTH_<project_id> (and /info), with the object expirer. */
  private async startSwift(): Promise<void> {
    this.swift = mountSwift(this.app, { store: this.objectStore, policy: this.policy, validator: this.identity.tokens, log: this.log, prefix: '/object' });
    this.swift.startExpirer(30_000);
    this.states.object = 'ok';
    await this.identity.catalog.register('object-store', 'swift', `${this.config.publicUrl}/object/v1/AUTH_$(project_id)s`, this.config.region);
  }

  swift: SwiftMount | null = null;

  /** Compute API, conductor and this host's compute agent (QEMU). */
  private async startCompute(): Promise<void> {
    for (const [k, v] of Object.entries(COMPUTE_QUOTAS)) this.quota.register(k, v);
    const images: ImagePort = {
      getImageForBoot: (ctx, id) => {
        if (!this.imagePort) throw new ApiError(503, 'The image service is not available.', 'ServiceUnavailable');
        return this.imagePort.getImageForBoot(ctx, id);
      },
      createImageFromFile: (ctx, input) => {
        if (!this.imagePort) throw new ApiError(503, 'The image service is not available.', 'ServiceUnavailable');
        return this.imagePort.createImageFromFile(ctx, input);
      },
      reserveImage: (ctx, input) => {
        if (!this.imagePort?.reserveImage) throw new ApiError(503, 'The image service is not available.', 'ServiceUnavailable');
        return this.imagePort.reserveImage(ctx, input);
      },
      deleteImage: async (ctx, id) => {
        await this.imagePort?.deleteImage?.(ctx, id);
      },
      listImages: (ctx, limit, marker) => {
        if (!this.imagePort?.listImages) throw new ApiError(503, 'The image service is not available.', 'ServiceUnavailable');
        return this.imagePort.listImages(ctx, limit, marker);
      },
      showImage: (ctx, id) => {
        if (!this.imagePort?.showImage) throw new ApiError(503, 'The image service is not available.', 'ServiceUnavailable');
        return this.imagePort.showImage(ctx, id);
      },
    };
    this.servers = new ServerService(this.database, this.bus, this.quota, images, this.log);
    this.conductor = new Conductor(this.database, this.bus, this.quota, images, this.log);
    this.conductor.serve();
    this.metadataServer = new MetadataServer(this.servers.db, this.bus, join(this.config.dataDir, 'run', 'metadata.sock'), this.log);
    await this.metadataServer.start();
    const keypairs = new KeypairService(this.servers.db, this.quota);
    await this.servers.flavors.seed();
    const env = { root: `${this.config.publicUrl}/compute` };
    const proxy = new SerialConsoleProxy(join(this.config.dataDir, 'instances'), this.config.publicUrl, this.log);
    await proxy.register(this.app);
    this.app.get('/compute', async (_req, reply) => {
      reply.code(200);
      return { versions: [legacyVersionDoc(env), computeVersionDoc(env)].map((v) => ({ ...v, links: v.links.filter((l) => l.rel === 'self') })) };
    });
    const apiRoutes = (legacyV2: boolean) => [
      ...computeRoutes({ servers: this.servers, keypairs, policy: this.policy, quota: this.quota, bus: this.bus, env, consoleUrl: (id) => proxy.issue(id), legacyV2 }),
      ...volumeAttachmentRoutes({ servers: this.servers, policy: this.policy, volumes: () => this.servers.volumes }),
    ];
    mountService(this.app, this.policy, {
      prefix: '/compute/v2.1', format: 'nova', onRequest: (req, reply) => {
        reply.header('x-compute-request-id', req.id);
        negotiateMicroversion(req, reply);
      },
      routes: apiRoutes(false),
    });
    // v2.0: the same routes at the base microversion, with no negotiation (and no version headers).
    mountService(this.app, this.policy, {
      prefix: '/compute/v2', format: 'nova', onRequest: (req, reply) => {
        reply.header('x-compute-request-id', req.id);
      },
      routes: apiRoutes(true),
    });
    await this.identity.catalog.register('compute', 'nova', `${env.root}/v2.1`, this.config.region);
    const driver = this.computeDriver ?? new QemuDriver({
      stateDir: join(this.config.dataDir, 'instances'),
      hostNetns: this.config.hostNetns ?? undefined,
      accel: this.config.compute.accel,
      // the verdict depends on the host alone: one probe serves every data dir
      accelCacheFile: join(this.config.cacheDir, 'accel-probe.json'),
      ...(this.guestImage ? { probeImage: { path: this.guestImage, format: 'qcow2' as const } } : {}),
      log: { info: (m: string) => this.log.info(m), warn: (m: string) => this.log.warn(m), debug: (m: string) => this.log.debug(m) },
    });
    this.computeAgent = new ComputeManager(this.bus, driver, this.log, { stateDir: join(this.config.dataDir, 'instances'), availabilityZone: this.config.compute.availabilityZone });
    serveVolumeOps(this.bus, driver, this.computeAgent.host, this.log);
    try {
      await this.computeAgent.start();
      this.states.compute = 'ok';
    } catch (e) {
      this.log.error({ err: e }, 'compute agent failed to start');
      this.states.compute = 'degraded';
    }
  }

  /** This host's network agent: same host name as the compute agent; the data plane lives in config.hostNetns. */
  private async startNetworkAgent(): Promise<void> {
    // A unit-test cloud (fake compute driver) has no data plane: it must never
    // touch the kernel's bridges or namespaces.
    if (this.computeDriver) return;
    this.networkAgent = new NetworkAgent({
      bus: this.bus,
      host: this.computeAgent?.host ?? hostname(),
      hostNetns: this.config.hostNetns,
      stateDir: join(this.config.dataDir, 'network'),
      metadataSocket: join(this.config.dataDir, 'run', 'metadata.sock'),
      log: this.log,
    });
    await this.networkAgent.start().catch((e) => this.log.error({ err: e }, 'network agent failed to start'));
  }

  /** Block storage API (Cinder v3) at /volume, this host's volume manager, and the compute side of volumes. */
  volume: VolumeSubsystem | null = null;
  private async startVolume(): Promise<void> {
    this.states.volume = 'starting';
    const root = `${this.config.publicUrl}/volume`;
    const images = { getImageForBoot: this.image.getImageForBoot.bind(this.image), createImageFromFile: this.image.createImageFromFile.bind(this.image), reserveImage: this.image.reserveImage.bind(this.image), deleteImage: this.image.deleteImage.bind(this.image) };
    const host = this.computeAgent?.host ?? 'localhost';
    const compute = { extendAttached: async (h: string, instanceId: string, volumeId: string, newBytes: number) => void (await this.bus.call(`compute-volumes.${h}`, 'extend_volume', { instanceId, volumeId, newBytes }, { timeoutMs: 120_000 })) };
    this.volume = await startVolumeSubsystem({ database: this.database, bus: this.bus, quota: this.quota, log: this.log, dataDir: this.config.dataDir, host, availabilityZone: this.config.compute.availabilityZone, images, objectStore: this.objectStore, compute });
    this.servers.volumes = this.conductor.volumes = new ServerVolumes(new VolumePortForCompute(this.volume.service), this.bus, this.log);
    mountService(this.app, this.policy, { prefix: '/volume', format: 'nova', onRequest: negotiateVolumeMicroversion, routes: volumeRoutes({ volumes: this.volume.service, policy: this.policy, env: { root } }) });
    this.app.get('/volume', async (_req, reply) => {
      reply.code(300);
      return { versions: [v3VersionDoc(root)] };
    });
    for (const type of ['volumev3', 'block-storage']) await this.identity.catalog.register(type, 'cinderv3', `${root}/v3/$(project_id)s`, this.config.region);
    this.states.volume = 'ok';
  }

  private guestImage: string | null = null;

  private async buildGuestImage(): Promise<void> {
    try {
      const t0 = Date.now();
      const out = await buildGuestImage(this.config.guestImageCache, (m) => this.log.info(m));
      this.guestImage = out.qcow2;
      this.log.info({ ms: Date.now() - t0, path: out.qcow2 }, 'guest image ready');
    } catch (e) {
      this.log.error({ err: e }, 'building the seeded guest image failed; no image will be seeded');
      console.error(`stratus: building the guest image failed (${(e as Error).message}); continuing without it`);
    }
  }

  /** A token context for the cloud's own admin, for seeding through the service APIs. */
  async adminContext(): Promise<AuthContext> {
    const admin = await this.identity.users.findByName('admin', 'default');
    const project = await this.identity.resources.findProjectByName('admin', 'default');
    return (await this.identity.tokens.issueFor(admin!.id, project!.id, ['password'])).ctx;
  }

  /** Demo project and user, the seeded guest image, and whatever later services seed. Idempotent. */
  private async seed(): Promise<void> {
    await this.identity.seedDemo();
    if (this.guestImage && this.seedImage) await this.seedImage(await this.adminContext(), this.guestImage);
    await this.seedNetworks();
  }

  /** Networking API (Neutron v2.0) at /network, and the `network` bus topic. */
  private async startNetwork(): Promise<void> {
    this.network = new NetworkService(this.database, this.quota, this.log, this.bus, { availabilityZone: this.config.compute.availabilityZone });
    this.network.serve();
    const root = `${this.config.publicUrl}/network`;
    mountService(this.app, this.policy, { prefix: '/network', format: 'neutron', routes: networkRoutes(this.network, this.policy, { root }) });
    await this.identity.catalog.register('network', 'neutron', root, this.config.region);
    this.states.network = 'ok';
  }

  /** The public network, and the demo project's private network and router. */
  private async seedNetworks(): Promise<void> {
    const admin = await this.identity.resources.findProjectByName('admin', 'default');
    const demo = await this.identity.resources.findProjectByName('demo', 'default');
    if (admin && demo) await this.network.seedNetworks({ adminProjectId: admin.id, demoProjectId: demo.id });
  }

  /** Set by the image service: registers the guest image as a public image once. */
  seedImage: ((ctx: AuthContext, path: string) => Promise<void>) | null = null;

  async stop(): Promise<void> {
    for (const k of Object.keys(this.states)) this.states[k] = 'stopped';
    await this.app.close();
    await this.volume?.manager.stop().catch((e) => this.log.error({ err: e }, 'volume manager stop failed'));
    await this.computeAgent?.stop().catch((e) => this.log.error({ err: e }, 'compute agent stop failed'));
    await this.metadataServer?.stop().catch((e) => this.log.error({ err: e }, 'metadata server stop failed'));
    await this.networkAgent?.stop().catch((e) => this.log.error({ err: e }, 'network agent stop failed'));
    await this.network?.stop().catch((e) => this.log.error({ err: e }, 'network service stop failed'));
    await this.image?.stop().catch((e) => this.log.error({ err: e }, 'image service stop failed'));
    this.swift?.stop();
    await this.s3?.close().catch((e) => this.log.error({ err: e }, 'S3 listener close failed'));
    await this.objectStore?.close().catch((e) => this.log.error({ err: e }, 'object store close failed'));
    await this.bus.close();
    await this.database.close();
    this.log.flush?.();
  }
}

