import { ApiError } from '../../core/errors.js';

/**
 * Neutron's error vocabulary: the `type` in `{"NeutronError": {type, message}}`
 * is the exception class name clients and Tempest look at, so every error the
 * service raises names one, with Neutron's status and message wording.
 */
export const nerr = (status: number, type: string, message: string): ApiError => new ApiError(status, message, type);

export const notFound = (kind: string, id: string): ApiError => {
  const names: Record<string, [string, string]> = {
    network: ['NetworkNotFound', 'Network'],
    subnet: ['SubnetNotFound', 'Subnet'],
    port: ['PortNotFound', 'Port'],
    router: ['RouterNotFound', 'Router'],
    floatingip: ['FloatingIPNotFound', 'Floating IP'],
    security_group: ['SecurityGroupNotFound', 'Security group'],
    security_group_rule: ['SecurityGroupRuleNotFound', 'Security group rule'],
    agent: ['AgentNotFound', 'Agent'],
  };
  const [type, label] = names[kind] ?? ['NotFound', kind];
  return nerr(404, type, `${label} ${id} could not be found.`);
};

export const badRequest = (message: string, type = 'BadRequest'): ApiError => nerr(400, type, message);
export const invalidInput = (message: string): ApiError => nerr(400, 'InvalidInput', `Invalid input for operation: ${message}.`);
export const conflict = (type: string, message: string): ApiError => nerr(409, type, message);
export const overQuota = (resource: string): ApiError => nerr(409, 'OverQuota', `Quota exceeded for resources: ['${resource}'].`);
