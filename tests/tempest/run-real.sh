#!/usr/bin/env bash
# The same tempest selection as run.sh, against the real Keystone + Cinder of
# tests/real-openstack/up.sh (which must be up). Makes the accounts tempest needs through
# Keystone (a member and a reader per project, and admins), runs every selected test (no skip
# list: that list names the emulator's gaps) and prints passed / selected. Not run by .ci/run
# (docs/reliability.md says why). Usage:
#   tests/tempest/run-real.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
state="${STATE_DIR:-/var/tmp/cinder-evs-csi-openstack}"
[ -f "$state/run/up" ] || { echo "run-real.sh: the real tier is not up (tests/real-openstack/up.sh)" >&2; exit 1; }
# shellcheck source=common.sh
. "$here/common.sh"
venv="$(tempest_venv "$here")"
work="$(mktemp -d /var/tmp/cinder-evs-csi-tempest-real.XXXXXX)"
chmod 700 "$work"
trap '[ -n "${TEMPEST_KEEP:-}" ] || rm -rf "$work"' EXIT
accounts="$work/accounts.yaml"
# Users and projects of this run (random suffix, so runs do not collide); passwords are random and
# stay in the 0700 work directory.
"$venv/bin/python" - "$state/secrets" "$accounts" <<'PY'
import json, os, secrets, sys, urllib.request
KEYSTONE = "http://127.0.0.1:5000/v3"
admin_password = dict(l.strip().split("=", 1) for l in open(sys.argv[1]) if "=" in l)["ADMIN_PASSWORD"]

def call(method, path, token=None, body=None):
    request = urllib.request.Request(KEYSTONE + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("X-Auth-Token", token)
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
        return response.headers, json.loads(text) if text else {}

headers, _ = call("POST", "/auth/tokens", body={"auth": {
    "identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": admin_password}}},
    "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
admin = headers["X-Subject-Token"]
role = {r["name"]: r["id"] for r in call("GET", "/roles", admin)[1]["roles"]}
run = secrets.token_hex(3)
out = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(out, "w") as f:
    def add(name, project_id, project_name, roles, types=None):
        password = secrets.token_urlsafe(18)
        user = call("POST", "/users", admin, {"user": {"name": name, "password": password,
                                                       "domain_id": "default"}})[1]["user"]["id"]
        for r in roles:
            call("PUT", f"/projects/{project_id}/users/{user}/roles/{role[r]}", admin)
        f.write(f"- username: {name}\n  password: {password}\n  project_name: {project_name}\n"
                "  user_domain_name: Default\n  project_domain_name: Default\n"
                f"  roles: {json.dumps(roles)}\n" + (f"  types: {types}\n" if types else ""))
    for i in range(1, 5):
        for kind in ("", "admin-"):
            name = f"tempest-{kind}{run}-{i}"
            project = call("POST", "/projects", admin, {"project": {"name": name, "domain_id": "default"}})[1]["project"]["id"]
            if kind:
                add(f"tempest-admin-{run}-{i}", project, name, ["admin", "member", "reader"], "[admin]")
            else:
                add(f"tempest-member-{run}-{i}", project, name, ["member"])
                add(f"tempest-reader-{run}-{i}", project, name, ["reader"])
PY
sed -e "s#@AUTH_URL@#http://127.0.0.1:5000/v3#" -e "s#@ACCOUNTS@#$accounts#" -e "s#@LOGS@#$work#" \
  -e "s#^catalog_type = .*#catalog_type = block-storage#" \
  -e "s#^storage_protocol = .*#storage_protocol = fake#" "$here/tempest.conf.in" >"$work/tempest.conf"
tempest_run "$here" "$venv" "$work" ""
