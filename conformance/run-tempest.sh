#!/usr/bin/env bash
# Runs OpenStack Tempest (the shared conformance harness) against a fresh
# Stratus on a temp data dir.
# Usage: conformance/run-tempest.sh [identity|image|compute|network|volume|object-storage] [--interop]
#   --interop  runs the service's interop guideline list (../shared/conformance/lists/<service>.txt)
#              instead of every tempest.api.<service> test
# Keystone-legacy admin semantics are switched on for the run
# (STRATUS_IDENTITY__ENFORCE_SCOPE=false) because Tempest's dynamic
# credentials make a project admin and expect it to act cloud-wide.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVICE=${1:-identity}
MODE=${2:-}
HARNESS=${HARNESS:-$ROOT/../shared/conformance}
[ -x "$HARNESS/run-tempest.sh" ] || { echo "no Tempest harness at $HARNESS" >&2; exit 2; }
DATA=$(mktemp -d /tmp/stratus-tempest.XXXXXX)
PORT=${PORT:-18790}
# The data plane (bridges, guests' taps, router namespaces' links) lives in a
# namespace made for this run, never in the root namespace.
NETNS=stratus-tempest-$$
ip netns add "$NETNS" && ip -n "$NETNS" link set lo up
STRATUS_IDENTITY__ENFORCE_SCOPE=false STRATUS_IDENTITY__PASSWORD_HASH_COST=8 STRATUS_COMPUTE__ACCEL=${STRATUS_COMPUTE__ACCEL:-tcg} \
  "$ROOT/stratus" up --data-dir "$DATA" --listen 127.0.0.1:$PORT --s3-listen 127.0.0.1:$((PORT+1)) --host-netns "$NETNS" --log-level warn >"$DATA/up.out" 2>&1 &
PID=$!
cleanup() {
  kill $PID 2>/dev/null; wait $PID 2>/dev/null
  # the host namespace, and the router/DHCP namespaces the agent marked as its own
  for ns in "$NETNS" $(ls "$DATA/network/netns" 2>/dev/null); do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p"; done
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf "$DATA"
}
trap cleanup EXIT
for _ in $(seq 1 300); do grep -q "stratus ready" "$DATA/up.out" 2>/dev/null && break; sleep 0.5; done
grep -q "stratus ready" "$DATA/up.out" || { cat "$DATA/up.out"; exit 2; }
# shellcheck disable=SC1091
. "$DATA/admin-openrc.sh"
# Compute tests need the image service (and network when the cloud has it); volume tests boot servers too.
case "$SERVICE" in
  compute|volume) SERVICES="compute image network volume" ;;
  network) SERVICES="network compute image" ;;
  *) SERVICES="$SERVICE" ;;
esac
# A second flavor for the tests that need two (resize, list filtered by flavor): the
# next-smallest one (the harness would otherwise use the same flavor twice).
if [[ " $SERVICES " == *" compute "* && -z "${TEMPEST_FLAVOR_REF_ALT:-}" ]]; then
  TEMPEST_FLAVOR_REF_ALT="$(openstack flavor list -f value -c ID -c RAM | sort -k2 -n | sed -n 2p | cut -d' ' -f1)"
  export TEMPEST_FLAVOR_REF_ALT
fi
if [ "$MODE" = "--interop" ]; then
  export TEMPEST_LIST="$HARNESS/lists/$SERVICE.txt"
else
  export TEMPEST_REGEX="^tempest\\.api\\.${SERVICE//-/_}"
fi
TEMPEST_SERVICES="$SERVICES" TEMPEST_EXTRA_CONF="$ROOT/conformance/tempest-extra.ini" \
  "$HARNESS/run-tempest.sh"
