import { CONTAINER_FORMATS, DISK_FORMATS, IMAGE_STATUSES, MEMBER_STATUSES } from '../service/model.js';

/**
 * The JSON schemas the Image API publishes under /v2/schemas. Clients
 * (python-glanceclient, via warlock) validate the images they receive and
 * the changes they make against `image`, so it must describe exactly what
 * the service returns: nullable base attributes, string-valued extra
 * properties, read-only attributes marked as such.
 */
const UUID_PATTERN = '^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$';

const nullable = (t: string) => ['null', t];

function imageProperties(): Record<string, unknown> {
  return {
    id: { type: 'string', description: 'An identifier for the image', pattern: UUID_PATTERN },
    name: { type: nullable('string'), description: 'Descriptive name for the image', maxLength: 255 },
    status: { type: 'string', readOnly: true, description: 'Status of the image', enum: IMAGE_STATUSES },
    visibility: { type: 'string', description: 'Scope of image accessibility', enum: ['community', 'public', 'private', 'shared'] },
    protected: { type: 'boolean', description: 'If true, image will not be deletable.' },
    os_hidden: { type: 'boolean', description: 'If true, image will not appear in default image list response.' },
    checksum: { type: nullable('string'), readOnly: true, description: 'md5 hash of image contents.', maxLength: 32 },
    os_hash_algo: { type: nullable('string'), readOnly: true, description: 'Algorithm to calculate the os_hash_value', maxLength: 64 },
    os_hash_value: { type: nullable('string'), readOnly: true, description: 'Hexdigest of the image contents using the algorithm specified by the os_hash_algo', maxLength: 128 },
    owner: { type: nullable('string'), description: 'Owner of the image', maxLength: 255 },
    size: { type: nullable('integer'), readOnly: true, description: 'Size of image file in bytes' },
    virtual_size: { type: nullable('integer'), readOnly: true, description: 'Virtual size of image in bytes' },
    container_format: { type: nullable('string'), description: 'Format of the container', enum: [null, ...CONTAINER_FORMATS] },
    disk_format: { type: nullable('string'), description: 'Format of the disk', enum: [null, ...DISK_FORMATS] },
    created_at: { type: 'string', readOnly: true, description: 'Date and time of image registration' },
    updated_at: { type: 'string', readOnly: true, description: 'Date and time of the last image modification' },
    tags: { type: 'array', description: 'List of strings related to the image', items: { type: 'string', maxLength: 255 } },
    direct_url: { type: 'string', readOnly: true, description: 'URL to access the image file kept in external store' },
    min_ram: { type: 'integer', description: 'Amount of ram (in MB) required to boot image.' },
    min_disk: { type: 'integer', description: 'Amount of disk space (in GB) required to boot image.' },
    self: { type: 'string', readOnly: true, description: 'An image self url' },
    file: { type: 'string', readOnly: true, description: 'An image file url' },
    stores: { type: 'string', readOnly: true, description: 'Store in which image data resides.' },
    schema: { type: 'string', readOnly: true, description: 'An image schema url' },
    locations: {
      type: 'array',
      description: 'A set of URLs to access the image file kept in external store',
      items: { type: 'object', required: ['url', 'metadata'], properties: { url: { type: 'string', maxLength: 255 }, metadata: { type: 'object' } } },
    },
    kernel_id: { type: nullable('string'), pattern: UUID_PATTERN, is_base: false, description: 'ID of image stored in Glance that should be used as the kernel when booting an AMI-style image.' },
    ramdisk_id: { type: nullable('string'), pattern: UUID_PATTERN, is_base: false, description: 'ID of image stored in Glance that should be used as the ramdisk when booting an AMI-style image.' },
    instance_uuid: { type: 'string', is_base: false, description: 'Metadata which can be used to record which instance this image is associated with.' },
    architecture: { type: 'string', is_base: false, description: 'Operating system architecture' },
    os_distro: { type: 'string', is_base: false, description: 'Common name of operating system distribution' },
    os_version: { type: 'string', is_base: false, description: 'Operating system version as specified by the distributor' },
  };
}

export function imageSchema(): Record<string, unknown> {
  return {
    name: 'image',
    properties: imageProperties(),
    additionalProperties: { type: 'string' },
    links: [
      { rel: 'self', href: '{self}' },
      { rel: 'enclosure', href: '{file}' },
      { rel: 'describedby', href: '{schema}' },
    ],
  };
}

export function imagesSchema(): Record<string, unknown> {
  return {
    name: 'images',
    properties: {
      images: { type: 'array', items: imageSchema() },
      schema: { type: 'string' },
      first: { type: 'string' },
      next: { type: 'string' },
    },
    links: [
      { rel: 'first', href: '{first}' },
      { rel: 'next', href: '{next}' },
      { rel: 'describedby', href: '{schema}' },
    ],
  };
}

export function memberSchema(): Record<string, unknown> {
  return {
    name: 'member',
    properties: {
      created_at: { type: 'string', description: 'Date and time of image member creation' },
      image_id: { type: 'string', description: 'An identifier for the image', pattern: UUID_PATTERN },
      member_id: { type: 'string', description: 'An identifier for the image member (tenantId)' },
      schema: { type: 'string', readOnly: true },
      status: { type: 'string', description: 'The status of this image member', enum: MEMBER_STATUSES },
      updated_at: { type: 'string', description: 'Date and time of last modification of image member' },
    },
  };
}

export function membersSchema(): Record<string, unknown> {
  return {
    name: 'members',
    properties: { members: { type: 'array', items: memberSchema() }, schema: { type: 'string' } },
    links: [{ rel: 'describedby', href: '{schema}' }],
  };
}

export function taskSchema(): Record<string, unknown> {
  return {
    name: 'task',
    properties: {
      id: { type: 'string', description: 'An identifier for the task', pattern: UUID_PATTERN },
      type: { type: 'string', description: 'The type of task represented by this content', enum: ['import', 'api_image_import', 'location_import'] },
      status: { type: 'string', description: 'The current status of this task', enum: ['pending', 'processing', 'success', 'failure'] },
      input: { type: ['null', 'object'], description: 'The parameters required by task, JSON blob' },
      result: { type: ['null', 'object'], description: 'The result of current task, JSON blob' },
      owner: { type: ['null', 'string'], description: 'An identifier for the owner of this task' },
      message: { type: 'string', description: 'Human-readable informative message only included when appropriate (usually on failure)' },
      image_id: { type: ['null', 'string'], readOnly: true, description: 'Image associated with the task' },
      request_id: { type: ['null', 'string'], readOnly: true, description: 'Human-readable informative request-id' },
      user_id: { type: ['null', 'string'], readOnly: true, description: 'User associated with the task' },
      expires_at: { type: ['null', 'string'], description: 'Datetime when this resource would be subject to removal' },
      created_at: { type: 'string', description: 'Datetime when this resource was created' },
      updated_at: { type: 'string', description: 'Datetime when this resource was updated' },
      self: { type: 'string' },
      schema: { type: 'string' },
    },
    links: [
      { rel: 'self', href: '{self}' },
      { rel: 'describedby', href: '{schema}' },
    ],
  };
}

export function tasksSchema(): Record<string, unknown> {
  return {
    name: 'tasks',
    properties: {
      tasks: { type: 'array', items: taskSchema() },
      schema: { type: 'string' },
      first: { type: 'string' },
      next: { type: 'string' },
    },
    links: [
      { rel: 'first', href: '{first}' },
      { rel: 'next', href: '{next}' },
      { rel: 'describedby', href: '{schema}' },
    ],
  };
}
