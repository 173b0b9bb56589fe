/** Overview: quota usage per resource (SVG bars) and the project's recent activity. */
import { hasService } from '../api/client.js';
import { compute, type InstanceAction, type Server } from '../api/compute.js';
import { network, NETWORK_TYPES } from '../api/network.js';
import { volume, VOLUME_TYPES } from '../api/volume.js';
import { useApp } from '../app.js';
import { href } from '../router.js';
import { ErrorBox, fmtTime, PageHeader, QuotaBar, Spinner, Table, useAsync } from '../ui/kit.js';

interface Usage {
  label: string;
  used: number;
  limit: number;
  unit?: string;
}

export default function Overview() {
  const { session } = useApp();
  const quotas = useAsync(async () => {
    const out: { group: string; items: Usage[] }[] = [];
    if (hasService(['compute'])) {
      const a = await compute.limits();
      out.push({
        group: 'Compute',
        items: [
          { label: 'Instances', used: a.totalInstancesUsed ?? 0, limit: a.maxTotalInstances ?? -1 },
          { label: 'VCPUs', used: a.totalCoresUsed ?? 0, limit: a.maxTotalCores ?? -1 },
          { label: 'RAM', used: a.totalRAMUsed ?? 0, limit: a.maxTotalRAMSize ?? -1, unit: ' MiB' },
          ...(a.maxServerGroups !== undefined ? [{ label: 'Server groups', used: a.totalServerGroupsUsed ?? 0, limit: a.maxServerGroups }] : []),
        ],
      });
    }
    if (hasService(VOLUME_TYPES)) {
      const a = await volume.limits().catch(() => null);
      if (a)
        out.push({
          group: 'Volumes',
          items: [
            { label: 'Volumes', used: a.totalVolumesUsed ?? 0, limit: a.maxTotalVolumes ?? -1 },
            { label: 'Volume storage', used: a.totalGigabytesUsed ?? 0, limit: a.maxTotalVolumeGigabytes ?? -1, unit: ' GiB' },
            { label: 'Volume snapshots', used: a.totalSnapshotsUsed ?? 0, limit: a.maxTotalSnapshots ?? -1 },
          ],
        });
    }
    if (hasService(NETWORK_TYPES) && session.project) {
      const q = await network.quotaDetails(session.project.id).catch(() => null);
      const names: [string, string][] = [
        ['network', 'Networks'],
        ['router', 'Routers'],
        ['floatingip', 'Floating IPs'],
        ['port', 'Ports'],
        ['security_group', 'Security groups'],
      ];
      if (q) out.push({ group: 'Network', items: names.filter(([k]) => q[k]).map(([k, label]) => ({ label, used: q[k]!.used, limit: q[k]!.limit })) });
    }
    return out;
  }, [session.token]);

  const activity = useAsync(async () => {
    if (!hasService(['compute'])) return [];
    const servers = (await compute.servers({ limit: 1000 })).sort((a, b) => b.updated.localeCompare(a.updated)).slice(0, 6);
    const per = await Promise.all(servers.map(async (s) => (await compute.actions(s.id).catch(() => [] as InstanceAction[])).map((a) => ({ ...a, server: s }))));
    return per
      .flat()
      .sort((a, b) => b.start_time.localeCompare(a.start_time))
      .slice(0, 12);
  }, [session.token], 15000);

  return (
    <>
      <PageHeader title="Overview" />
      <p className="muted">
        Project <strong>{session.project?.name}</strong> as <strong>{session.user.name}</strong>.
      </p>
      <section aria-labelledby="quota-h">
        <h2 id="quota-h">Quota usage</h2>
        <ErrorBox error={quotas.error} />
        {quotas.loading && !quotas.data ? <Spinner /> : null}
        <div className="quota-groups">
          {quotas.data?.map((g) => (
            <div key={g.group} className="card">
              <h3>{g.group}</h3>
              {g.items.map((u) => (
                <QuotaBar key={u.label} {...u} />
              ))}
            </div>
          ))}
        </div>
      </section>
      <section aria-labelledby="activity-h">
        <h2 id="activity-h">Recent activity</h2>
        <ErrorBox error={activity.error} />
        {activity.loading && !activity.data ? <Spinner /> : null}
        <Table<InstanceAction & { server: Server }>
          caption="Recent instance actions"
          rows={activity.data}
          rowKey={(a) => a.request_id + a.action}
          empty="No activity yet."
          columns={[
            { label: 'When', render: (a) => fmtTime(a.start_time) },
            { label: 'Action', render: (a) => a.action },
            { label: 'Instance', render: (a) => <a href={href(`compute/instances/${a.server.id}`)}>{a.server.name}</a> },
            { label: 'Result', render: (a) => a.message ?? 'OK' },
          ]}
        />
      </section>
    </>
  );
}
