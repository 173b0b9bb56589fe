import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { mergeLoads, QUANTILES, type LoadResult } from '../../bench/lib/wrk.js';

/** A run whose latencies are spread evenly over [lo, lo + 1) ms. */
const run = (lo: number, requests: number, seconds = 1): LoadResult => ({
  rps: requests / seconds, p50ms: lo + 0.5, p99ms: lo + 0.99, requests, non2xx: 1, seconds,
  quantiles: Array.from({ length: QUANTILES }, (_, k) => lo + (k + 0.5) / QUANTILES),
});

test('mergeLoads: rate over the summed time, percentiles of all requests weighted by each run', () => {
  const m = mergeLoads([run(1, 1000), run(10, 3000, 2)]);
  assert.equal(m.requests, 4000);
  assert.equal(m.seconds, 3);
  assert.equal(m.rps, 4000 / 3);
  assert.equal(m.non2xx, 2);
  // A quarter of the requests lie in [1, 2) ms: the median is a third of the way into [10, 11).
  assert.ok(Math.abs(m.p50ms - 10.333) < 0.002, String(m.p50ms));
  assert.ok(Math.abs(m.p99ms - 10.9867) < 0.002, String(m.p99ms));
  assert.equal(m.quantiles.length, QUANTILES);
  assert.ok(m.quantiles[249]! < 2 && m.quantiles[250]! >= 10);
});

test('mergeLoads of one run is that run', () => {
  const r = run(3, 500);
  assert.equal(mergeLoads([r]), r);
});
