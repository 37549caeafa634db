#!/usr/bin/env bash
# The peer-client tier: installs the pinned clients into a venv under /var/tmp (once), then runs
# every script here against an emulator each starts on its own free ports. Exits non-zero if any
# check failed. Usage: tests/peer-clients/run.sh [path/to/cinder-evs-csi]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
binary="$(realpath "${1:-$here/../../target/debug/cinder-evs-csi}")"
venv="${PEER_CLIENTS_VENV:-/var/tmp/cinder-evs-csi-peer-clients}"
if ! "$venv/bin/python" -c "import openstack, cinderclient, huaweicloudsdkevs, huaweicloudsdkecs" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$here/requirements.txt" -c "$here/constraints.txt"
fi
status=0
for script in huawei_sdk.py openstack_clients.py; do
  "$venv/bin/python" "$here/$script" "$binary" || status=1
done
exit "$status"
