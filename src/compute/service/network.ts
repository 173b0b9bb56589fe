import { NoServerError, RemoteError, type Bus, type Json } from '../../core/bus.js';
import { ApiError } from '../../core/errors.js';
import type { AllocateRequest, InstancePort } from '../../network/protocol.js';

/**
 * How compute reaches the network service and this host's network agent
 * (over the bus, `src/network/protocol.ts`). A cloud without a network
 * service gives servers no NIC: `available()` is false and nothing is called.
 */
export class NetworkClient {
  constructor(private readonly bus: Bus) {}

  /** True when a network service answers on the bus. */
  available(): Promise<boolean> {
    return this.bus.hasServer('network');
  }

  private async call<T>(topic: string, method: string, args: Record<string, unknown>, timeoutMs = 60_000): Promise<T> {
    try {
      return (await this.bus.call(topic, method, args as Json, { timeoutMs })) as T;
    } catch (e) {
      if (e instanceof NoServerError) throw new ApiError(503, 'The network service is not available.', 'ServiceUnavailable');
      if (e instanceof RemoteError) throw remoteToApi(e);
      throw e;
    }
  }

  async allocate(req: AllocateRequest): Promise<InstancePort[]> {
    return (await this.call<{ ports: InstancePort[] }>('network', 'allocate_for_instance', req as unknown as Record<string, unknown>)).ports;
  }

  async deallocate(instanceId: string, host: string | null): Promise<void> {
    try {
      await this.bus.call('network', 'deallocate_for_instance', { instance_id: instanceId, host }, { timeoutMs: 60_000 });
    } catch (e) {
      if (!(e instanceof NoServerError)) throw e;
    }
  }

  /** The instance's ports; [] when there is no network service. */
  async instancePorts(instanceId: string): Promise<InstancePort[]> {
    try {
      return ((await this.bus.call('network', 'instance_ports', { instance_id: instanceId }, { timeoutMs: 10_000 })) as unknown as { ports: InstancePort[] }).ports;
    } catch (e) {
      if (e instanceof NoServerError) return [];
      throw e;
    }
  }

  /** The ports of many instances with one call; every id maps to a list ([] without a network service). */
  async portsOfInstances(ids: string[]): Promise<Map<string, InstancePort[]>> {
    const out = new Map<string, InstancePort[]>(ids.map((id) => [id, []]));
    if (!ids.length) return out;
    try {
      const r = (await this.bus.call('network', 'ports_of_instances', { instance_ids: ids }, { timeoutMs: 30_000 })) as unknown as { ports: Record<string, InstancePort[]> };
      for (const [id, ports] of Object.entries(r.ports)) out.set(id, ports);
    } catch (e) {
      if (!(e instanceof NoServerError)) throw e;
    }
    return out;
  }

  async attach(a: { instance_id: string; host: string; project_id: string; port_id?: string; network_id?: string; fixed_ip?: string }): Promise<InstancePort> {
    return (await this.call<{ port: InstancePort }>('network', 'attach_port', a)).port;
  }

  /** The project's security groups (Nova's os-security-groups proxy). */
  async projectSecurityGroups(projectId: string): Promise<Array<{ id: string; name: string; description: string }>> {
    if (!(await this.available())) return [];
    return (await this.call<{ security_groups: Array<{ id: string; name: string; description: string }> }>('network', 'project_security_groups', { project_id: projectId })).security_groups;
  }

  async detach(instanceId: string, portId: string): Promise<void> {
    await this.call('network', 'detach_port', { instance_id: instanceId, port_id: portId });
  }

  /** Asks the host's agent to wire a port's tap now; resolves with the device name. */
  async plug(host: string, portId: string): Promise<string> {
    return (await this.call<{ device: string }>(`netagent.${host}`, 'plug', { port_id: portId }, 120_000)).device;
  }

  async unplug(host: string, portId: string): Promise<void> {
    try {
      await this.bus.call(`netagent.${host}`, 'unplug', { port_id: portId }, { timeoutMs: 60_000 });
    } catch (e) {
      if (!(e instanceof NoServerError)) throw e;
    }
  }
}

/** Nova's `addresses`: per network name, fixed then floating addresses. */
export function addressesOf(ports: InstancePort[]): Record<string, Array<Record<string, unknown>>> {
  const out: Record<string, Array<Record<string, unknown>>> = {};
  for (const p of ports) {
    const list = (out[p.network_name] ??= []);
    for (const ip of p.fixed_ips) {
      list.push({ version: ip.version, addr: ip.ip_address, 'OS-EXT-IPS:type': 'fixed', 'OS-EXT-IPS-MAC:mac_addr': p.mac_address });
      for (const f of ip.floating_ips) list.push({ version: 4, addr: f, 'OS-EXT-IPS:type': 'floating', 'OS-EXT-IPS-MAC:mac_addr': p.mac_address });
    }
  }
  return out;
}

/** network_data.json (config drive and metadata service) from the instance's ports. */
export function networkDataOf(ports: InstancePort[]): Record<string, unknown> {
  const links = ports.map((p) => ({ id: p.device, vif_id: p.id, type: 'tap', mtu: p.mtu, ethernet_mac_address: p.mac_address }));
  const networks: Array<Record<string, unknown>> = [];
  ports.forEach((p) => {
    p.fixed_ips.forEach((ip, i) => {
      const prefix = Number(ip.cidr.split('/')[1]);
      networks.push({
        id: `network${networks.length}`, link: p.device, network_id: p.network_id, type: ip.version === 4 ? 'ipv4_dhcp' : 'ipv6_dhcp',
        ...(ip.version === 4 ? { ip_address: ip.ip_address, netmask: v4Netmask(prefix) } : { ip_address: `${ip.ip_address}/${prefix}` }),
        routes: ip.gateway_ip && i === 0 ? [{ network: ip.version === 4 ? '0.0.0.0' : '::', netmask: ip.version === 4 ? '0.0.0.0' : '::', gateway: ip.gateway_ip }] : [],
        services: p.dns_nameservers.map((a) => ({ type: 'dns', address: a })),
      });
    });
  });
  const dns = [...new Set(ports.flatMap((p) => p.dns_nameservers))].map((a) => ({ type: 'dns', address: a }));
  return { links, networks, services: dns };
}

function v4Netmask(prefix: number): string {
  const m = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (m >>> s) & 255).join('.');
}

/** A network service failure as the compute API reports it (Neutron's status and message; 5xx become 400 with the message). */
export function remoteToApi(e: RemoteError): ApiError {
  return new ApiError(e.status && e.status < 500 ? e.status : 400, e.message, e.code ?? 'BadRequest');
}
