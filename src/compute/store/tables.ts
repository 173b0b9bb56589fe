export interface FlavorRow {
  id: string; name: string; vcpus: number; ram: number; disk: number; ephemeral: number; swap: number; rxtx_factor: number;
  is_public: number; disabled: number; description: string | null; extra_specs: string; created_at: number;
}
export interface InstanceRow {
  id: string; name: string; project_id: string; user_id: string; image_id: string; flavor: string; old_flavor: string | null;
  key_name: string | null; key_data: string | null; user_data: string | null; availability_zone: string; host: string | null;
  vm_state: string; task_state: string | null; power_state: number; locked: number; locked_by: string | null; config_drive: number;
  metadata: string; tags: string; description: string | null; reservation_id: string; launch_index: number; access_ip_v4: string;
  access_ip_v6: string; admin_pass_set: number; server_group_id: string | null; created_at: number; updated_at: number;
  launched_at: number | null; terminated_at: number | null; deleted: number;
  /** JSON: 'auto' | 'none' | [{ network_id?, port_id?, fixed_ip? }]; null = not given (auto). */
  requested_networks: string | null;
  /** JSON array of security group names. */
  security_groups: string;
}
export interface ComputeTables {
  nova_flavors: FlavorRow;
  nova_flavor_access: { flavor_id: string; project_id: string };
  nova_keypairs: { user_id: string; name: string; type: string; public_key: string; fingerprint: string; created_at: number };
  nova_instances: InstanceRow;
  nova_instance_actions: { id: string; instance_id: string; action: string; request_id: string; user_id: string; project_id: string; message: string | null; start_time: number; updated_at: number };
  nova_instance_action_events: { id: string; action_id: string; event: string; result: string | null; traceback: string | null; host: string | null; start_time: number; finish_time: number | null };
  nova_instance_faults: { id: string; instance_id: string; code: number; message: string; details: string; created_at: number };
  nova_server_groups: { id: string; name: string; policy: string; project_id: string; user_id: string; created_at: number };
  nova_compute_hosts: {
    id: number; host: string; availability_zone: string; vcpus: number; memory_mb: number; disk_gb: number; cpu_ratio: number; ram_ratio: number;
    disk_ratio: number; hypervisor_type: string; hypervisor_version: string; accel: string; status: string; disabled_reason: string | null;
    forced_down: number; heartbeat_at: number; created_at: number;
  };
  nova_allocations: { instance_id: string; host: string; vcpus: number; memory_mb: number; disk_gb: number };
}
/** The flavor as frozen into an instance at boot (Nova's embedded flavor). */
export interface EmbeddedFlavor { id: string; name: string; vcpus: number; ram: number; disk: number; ephemeral: number; swap: number; extra_specs: Record<string, string> }
