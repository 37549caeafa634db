"""Fills a fresh Keystone and Cinder with what the controller suite needs, through their APIs.

    bootstrap.py keystone STATE_DIR   users, projects, the block-storage endpoints, clouds.yaml
    bootstrap.py cinder STATE_DIR     waits for the Cinder services, then types, group type, quotas

Passwords are read from STATE_DIR/secrets (written by up.sh, mode 0600) and never printed.
Only the standard library is used, so it runs with any python3.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request

KEYSTONE = "http://127.0.0.1:5000/v3"
CINDER = "http://127.0.0.1:8776/v3"


def call(method, url, token=None, body=None, headers=None, ok=(200, 201, 202, 204)):
    request = urllib.request.Request(url, method=method)
    request.add_header("Content-Type", "application/json")
    request.add_header("Accept", "application/json")
    if token:
        request.add_header("X-Auth-Token", token)
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(request, data, timeout=30) as response:
            text = response.read().decode()
            return response.status, response.headers, json.loads(text) if text else {}
    except urllib.error.HTTPError as error:
        text = error.read().decode(errors="replace")
        if error.code in ok:
            return error.code, error.headers, {}
        sys.exit(f"{method} {url} answered {error.code}: {text[:500]}")


def token(user, password, project):
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
    _, headers, reply = call("POST", f"{KEYSTONE}/auth/tokens", body=body)
    return headers["X-Subject-Token"], reply["token"]["project"]["id"]


def secrets(state):
    with open(os.path.join(state, "secrets")) as f:
        return dict(line.strip().split("=", 1) for line in f if "=" in line)


def keystone(state):
    s = secrets(state)
    admin, _ = token("admin", s["ADMIN_PASSWORD"], "admin")

    def create(kind, body):
        return call("POST", f"{KEYSTONE}/{kind}s", admin, {kind: body})[2][kind]["id"]

    def role(name):
        return call("GET", f"{KEYSTONE}/roles?name={name}", admin)[2]["roles"][0]["id"]

    def grant(project, user, role_name):
        call("PUT", f"{KEYSTONE}/projects/{project}/users/{user}/roles/{role(role_name)}", admin)

    service_project = create("project", {"name": "service", "domain_id": "default"})
    cinder_user = create("user", {"name": "cinder", "password": s["CINDER_PASSWORD"], "domain_id": "default"})
    grant(service_project, cinder_user, "admin")
    grant(service_project, cinder_user, "service")
    csi_project = create("project", {"name": "csi", "domain_id": "default"})
    csi_user = create("user", {"name": "csi", "password": s["CSI_PASSWORD"], "domain_id": "default"})
    grant(csi_project, csi_user, "member")
    service = create("service", {"type": "block-storage", "name": "cinderv3"})
    for interface in ("public", "internal", "admin"):
        create("endpoint", {"service_id": service, "interface": interface, "region_id": "RegionOne",
                            "url": f"http://127.0.0.1:8776/v3/%(project_id)s"})

    def cloud(name, user, password, project):
        return (f"  {name}:\n    auth:\n      auth_url: {KEYSTONE}\n      username: {user}\n"
                f"      password: {password}\n      user_domain_name: Default\n"
                f"      project_name: {project}\n      project_domain_name: Default\n"
                f"    region_name: RegionOne\n")

    path = os.path.join(state, "clouds.yaml")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# Written by tests/real-openstack/up.sh. `csi`: a project member, as the driver runs;\n"
                "# `admin`: the cloud admin the real-tier tests use to make a project per test.\n")
        f.write("clouds:\n")
        f.write(cloud("csi", "csi", s["CSI_PASSWORD"], "csi"))
        f.write(cloud("admin", "admin", s["ADMIN_PASSWORD"], "admin"))


def cinder(state):
    s = secrets(state)
    admin, project = token("admin", s["ADMIN_PASSWORD"], "admin")
    base = f"{CINDER}/{project}"
    wanted = {"cinder-scheduler", "cinder-volume@fake", "cinder-volume@nfs", "cinder-backup"}
    deadline = time.time() + 180
    while True:
        try:
            _, _, reply = call("GET", f"{base}/os-services", admin)
            up = {f"{x['binary']}@{x['host'].split('@')[1]}" if x["binary"] == "cinder-volume" else x["binary"]
                  for x in reply["services"] if x["state"] == "up"}
            if wanted <= up:
                break
        except (OSError, SystemExit):
            up = set()
        if time.time() > deadline:
            sys.exit(f"cinder services not up after 180 s: have {sorted(up)}, want {sorted(wanted)}")
        time.sleep(0.5)

    # A service reported up may not have told the scheduler its pools yet; volumes asked for
    # before then fail with "No valid backend".
    while True:
        _, _, reply = call("GET", f"{base}/scheduler-stats/get_pools?detail=True", admin)
        backends = {p.get("capabilities", {}).get("volume_backend_name") for p in reply.get("pools", [])}
        if {"fake", "nfs"} <= backends:
            break
        if time.time() > deadline:
            sys.exit(f"the scheduler knows the pools of {sorted(b for b in backends if b)} only after 180 s")
        time.sleep(0.5)

    def volume_type(name, backend, public=True):
        body = {"volume_type": {"name": name, "os-volume-type-access:is_public": public,
                                "extra_specs": {"volume_backend_name": backend}}}
        call("POST", f"{base}/types", admin, body)

    volume_type("fake", "fake")
    volume_type("fake-gold", "fake")
    volume_type("nfs", "nfs")
    # Generic volume groups: no consistent_group_snapshot_enabled spec, so Cinder snapshots the
    # members one by one, which every driver supports. It is the default group type (cinder.conf).
    call("POST", f"{base}/group_types", admin, {"group_type": {"name": "csi-generic", "is_public": True}},
         headers={"OpenStack-API-Version": "volume 3.11"})
    limits = {k: -1 for k in ("volumes", "snapshots", "gigabytes", "backups", "backup_gigabytes",
                              "groups", "per_volume_gigabytes")}
    call("PUT", f"{base}/os-quota-class-sets/default", admin, {"quota_class_set": limits})


if __name__ == "__main__":
    {"keystone": keystone, "cinder": cinder}[sys.argv[1]](sys.argv[2])
