/**
 * Nova's instance state model, as the compute API reports it.
 *
 * vm_state is where the instance rests; task_state is the operation under
 * way (null when idle); power_state is what the hypervisor last reported.
 * The API layer moves task_state with a compare-and-set before handing work
 * to the host agent, so two operations never run on one instance at once;
 * the agent completes the transition, or records a fault and reverts
 * task_state (vm_state ERROR when the instance is left unusable).
 *
 * | action              | allowed vm_states           | task_state during  | vm_state after |
 * |---------------------|-----------------------------|--------------------|----------------|
 * | create              | -                           | scheduling→spawning| active         |
 * | stop                | active, error(*)            | powering-off       | stopped        |
 * | start               | stopped                     | powering-on        | active         |
 * | reboot soft         | active                      | reboot_started     | active         |
 * | reboot hard         | active, stopped, paused, suspended, error | reboot_started_hard | active |
 * | pause / unpause     | active / paused             | pausing / unpausing| paused / active|
 * | suspend / resume    | active / suspended          | suspending/resuming| suspended/active|
 * | rebuild             | active, stopped, error      | rebuilding→rebuild_spawning | active (stopped stays stopped) |
 * | resize              | active, stopped             | resize_prep→resize_finish | resized (VERIFY_RESIZE) |
 * | confirm / revert    | resized                     | - / resize_reverting| active or stopped |
 * | createImage         | active, stopped, paused, suspended | image_snapshot | unchanged      |
 * | rescue / unrescue   | active, stopped / rescued   | rescuing / unrescuing | rescued / active |
 * | delete              | any                         | deleting           | deleted (row soft-deleted) |
 * (*) error only when it has a host.
 */
export const VM = {
  ACTIVE: 'active', BUILDING: 'building', STOPPED: 'stopped', PAUSED: 'paused', SUSPENDED: 'suspended', RESIZED: 'resized',
  RESCUED: 'rescued', ERROR: 'error', DELETED: 'deleted', SOFT_DELETED: 'soft-delete', SHELVED: 'shelved',
} as const;

export const TASK = {
  SCHEDULING: 'scheduling', SPAWNING: 'spawning', NETWORKING: 'networking', BLOCK_DEVICE_MAPPING: 'block_device_mapping',
  POWERING_OFF: 'powering-off', POWERING_ON: 'powering-on', REBOOT_STARTED: 'reboot_started', REBOOT_STARTED_HARD: 'reboot_started_hard',
  PAUSING: 'pausing', UNPAUSING: 'unpausing', SUSPENDING: 'suspending', RESUMING: 'resuming', REBUILDING: 'rebuilding',
  RESIZE_PREP: 'resize_prep', RESIZE_FINISH: 'resize_finish', RESIZE_REVERTING: 'resize_reverting', RESIZE_CONFIRMING: 'resize_confirming',
  IMAGE_SNAPSHOT: 'image_snapshot', IMAGE_UPLOADING: 'image_uploading', RESCUING: 'rescuing', UNRESCUING: 'unrescuing', DELETING: 'deleting',
} as const;

/** Nova's power_state integers. */
export const POWER = { NOSTATE: 0, RUNNING: 1, PAUSED: 3, SHUTDOWN: 4, CRASHED: 6, SUSPENDED: 7 } as const;

export function powerStateOf(s: 'running' | 'paused' | 'suspended' | 'shutdown' | 'crashed' | 'nostate'): number {
  return { running: POWER.RUNNING, paused: POWER.PAUSED, suspended: POWER.SUSPENDED, shutdown: POWER.SHUTDOWN, crashed: POWER.CRASHED, nostate: POWER.NOSTATE }[s];
}

/** The API `status` derived from vm_state and task_state, as Nova computes it. */
export function serverStatus(vm: string, task: string | null): string {
  if (task === TASK.DELETING && vm !== VM.ERROR) return vm === VM.DELETED ? 'DELETED' : statusOfVm(vm);
  switch (vm) {
    case VM.ACTIVE:
      if (task === TASK.REBOOT_STARTED) return 'REBOOT';
      if (task === TASK.REBOOT_STARTED_HARD) return 'HARD_REBOOT';
      if (task === TASK.REBUILDING) return 'REBUILD';
      if (task === TASK.RESIZE_PREP || task === TASK.RESIZE_FINISH) return 'RESIZE';
      if (task === TASK.RESIZE_REVERTING) return 'REVERT_RESIZE';
      return 'ACTIVE';
    case VM.STOPPED:
      if (task === TASK.REBUILDING) return 'REBUILD';
      if (task === TASK.RESIZE_PREP || task === TASK.RESIZE_FINISH) return 'RESIZE';
      if (task === TASK.REBOOT_STARTED_HARD) return 'HARD_REBOOT';
      return 'SHUTOFF';
    case VM.RESIZED:
      return task === TASK.RESIZE_REVERTING ? 'REVERT_RESIZE' : 'VERIFY_RESIZE';
    default:
      return statusOfVm(vm);
  }
}
function statusOfVm(vm: string): string {
  return (
    {
      active: 'ACTIVE', building: 'BUILD', stopped: 'SHUTOFF', paused: 'PAUSED', suspended: 'SUSPENDED', resized: 'VERIFY_RESIZE', rescued: 'RESCUE',
      error: 'ERROR', deleted: 'DELETED', 'soft-delete': 'SOFT_DELETED', shelved: 'SHELVED', shelved_offloaded: 'SHELVED_OFFLOADED',
    } as Record<string, string>
  )[vm] ?? 'UNKNOWN';
}
