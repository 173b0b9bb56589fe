/**
 * Image sharing: members are added by the owner (shared images only), set
 * their own status, and see only their own membership.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startImageCloud, type ImageCloud, type Member } from './helpers.js';

let c: ImageCloud;
let owner: Member;
let consumer: Member;
let bystander: Member;
before(async () => {
  c = await startImageCloud();
  owner = await c.newMember('owner');
  consumer = await c.newMember('consumer');
  bystander = await c.newMember('bystander');
});
after(async () => {
  await c?.stop();
});

test('owner adds a member (pending), member accepts and downloads, owner removes it', async () => {
  const img = await c.create(owner.token, { name: 'to-share' });
  assert.equal((await c.upload(owner.token, img.id, 'shared bytes')).status, 204);
  assert.equal((await c.api('GET', `/images/${img.id}`, { token: consumer.token })).status, 404, 'not shared yet');
  const add = await c.api('POST', `/images/${img.id}/members`, { token: owner.token, body: { member: consumer.projectId } });
  assert.equal(add.status, 200, add.text);
  assert.equal(add.json.status, 'pending');
  assert.equal(add.json.member_id, consumer.projectId);
  assert.equal(add.json.image_id, img.id);
  assert.equal(add.json.schema, '/v2/schemas/member');
  assert.equal((await c.api('POST', `/images/${img.id}/members`, { token: owner.token, body: { member: consumer.projectId } })).status, 409, 'already a member');
  // a pending member already has access by id
  assert.equal((await c.api('GET', `/images/${img.id}`, { token: consumer.token })).status, 200);
  assert.equal((await c.api('GET', `/images/${img.id}/file`, { token: consumer.token })).text, 'shared bytes');
  // the owner cannot set the member's status; a bystander cannot see the image
  assert.equal((await c.api('PUT', `/images/${img.id}/members/${consumer.projectId}`, { token: owner.token, body: { status: 'accepted' } })).status, 403);
  assert.equal((await c.api('GET', `/images/${img.id}/members`, { token: bystander.token })).status, 404);
  const acc = await c.api('PUT', `/images/${img.id}/members/${consumer.projectId}`, { token: consumer.token, body: { status: 'accepted' } });
  assert.equal(acc.status, 200, acc.text);
  assert.equal(acc.json.status, 'accepted');
  assert.equal((await c.api('PUT', `/images/${img.id}/members/${consumer.projectId}`, { token: consumer.token, body: { status: 'maybe' } })).status, 400);
  const ownerView = await c.api('GET', `/images/${img.id}/members`, { token: owner.token });
  assert.equal(ownerView.status, 200);
  assert.equal(ownerView.json.schema, '/v2/schemas/members');
  assert.deepEqual(ownerView.json.members.map((m: { member_id: string; status: string }) => [m.member_id, m.status]), [[consumer.projectId, 'accepted']]);
  const one = await c.api('GET', `/images/${img.id}/members/${consumer.projectId}`, { token: consumer.token });
  assert.equal(one.status, 200);
  assert.equal(one.json.status, 'accepted');
  // the member cannot modify the image nor remove itself
  assert.equal((await c.patch(consumer.token, img.id, [{ op: 'replace', path: '/name', value: 'mine' }])).status, 403);
  assert.equal((await c.api('DELETE', `/images/${img.id}/members/${consumer.projectId}`, { token: consumer.token })).status, 403);
  assert.equal((await c.api('DELETE', `/images/${img.id}`, { token: consumer.token })).status, 403);
  const del = await c.api('DELETE', `/images/${img.id}/members/${consumer.projectId}`, { token: owner.token });
  assert.equal(del.status, 204, del.text);
  assert.equal((await c.api('GET', `/images/${img.id}`, { token: consumer.token })).status, 404, 'access gone');
  assert.equal((await c.api('DELETE', `/images/${img.id}/members/${consumer.projectId}`, { token: owner.token })).status, 404);
});

test('members see only their own membership', async () => {
  const img = await c.create(owner.token, { name: 'two-members' });
  for (const m of [consumer, bystander]) assert.equal((await c.api('POST', `/images/${img.id}/members`, { token: owner.token, body: { member: m.projectId } })).status, 200);
  const mine = await c.api('GET', `/images/${img.id}/members`, { token: consumer.token });
  assert.equal(mine.status, 200);
  assert.deepEqual(mine.json.members.map((m: { member_id: string }) => m.member_id), [consumer.projectId]);
  assert.equal((await c.api('GET', `/images/${img.id}/members/${bystander.projectId}`, { token: consumer.token })).status, 404);
  assert.equal((await c.api('GET', `/images/${img.id}/members`, { token: owner.token })).json.members.length, 2);
  assert.equal((await c.api('GET', `/images/${img.id}/members`, { token: c.admin.token })).json.members.length, 2);
  // a member cannot set another member's status
  assert.equal((await c.api('PUT', `/images/${img.id}/members/${bystander.projectId}`, { token: consumer.token, body: { status: 'accepted' } })).status, 403);
});

test('only shared images have members (403 otherwise); bad bodies are 400', async () => {
  const priv = await c.create(owner.token, { name: 'private', visibility: 'private' });
  const r = await c.api('POST', `/images/${priv.id}/members`, { token: owner.token, body: { member: consumer.projectId } });
  assert.equal(r.status, 403, r.text);
  assert.equal((await c.api('GET', `/images/${priv.id}/members`, { token: owner.token })).status, 403);
  const shared = await c.create(owner.token, { name: 'shared' });
  assert.equal((await c.api('POST', `/images/${shared.id}/members`, { token: owner.token, body: {} })).status, 400);
  assert.equal((await c.api('POST', `/images/${shared.id}/members`, { token: owner.token, body: { member: 42 } })).status, 400);
  assert.equal((await c.api('GET', `/images/${shared.id}/members`, { token: owner.token })).json.members.length, 0);
  // a non-owner cannot add members even to an image it can see
  const pub = await c.create(c.admin.token, { name: 'public', visibility: 'public' });
  assert.equal((await c.api('POST', `/images/${pub.id}/members`, { token: owner.token, body: { member: consumer.projectId } })).status, 403);
});

test('members of an image lose access when it stops being shared', async () => {
  const img = await c.create(owner.token, { name: 'unshare' });
  await c.api('POST', `/images/${img.id}/members`, { token: owner.token, body: { member: consumer.projectId } });
  assert.equal((await c.api('GET', `/images/${img.id}`, { token: consumer.token })).status, 200);
  assert.equal((await c.patch(owner.token, img.id, [{ op: 'replace', path: '/visibility', value: 'private' }])).status, 200);
  assert.equal((await c.api('GET', `/images/${img.id}`, { token: consumer.token })).status, 404);
  assert.equal((await c.patch(owner.token, img.id, [{ op: 'replace', path: '/visibility', value: 'shared' }])).status, 200);
  assert.equal((await c.api('GET', `/images/${img.id}`, { token: consumer.token })).status, 200, 'membership kept');
});
