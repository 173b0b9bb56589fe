/** Keystone renders times with microseconds: 2026-11-22T21:14:44.000000Z */
export function isoMicro(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
/** Nova/Cinder/Neutron render times without fraction: 2026-11-22T21:14:44Z */
export function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
/** Nova's older style: 2026-11-22T21:14:44.000000 (no zone) */
export function isoNaive(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000');
}
export const now = (): number => Date.now();
