#!/usr/bin/env python3
"""openstacksdk and python-cinderclient (unmodified, pinned) against the emulator, over the
routes the README claims: Keystone (password, token, application credential), Cinder volumes
and their actions, snapshots, types, quotas, limits, zones, attachments, groups, group types,
backups and manage, and Nova's servers and volume attachments.

    python3 tests/peer-clients/openstack_clients.py target/debug/cinder-evs-csi
"""
import sys
import time

import openstack
from cinderclient import client as cinder_client
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from emulator import Checks, Emulator


def wait(fetch, status, timeout=60):
    deadline = time.time() + timeout
    while True:
        thing = fetch()
        if thing.status == status:
            return thing
        assert not thing.status.startswith("error"), "%s went %s" % (thing, thing.status)
        assert time.time() < deadline, "still %s, not %s" % (thing.status, status)
        time.sleep(0.2)


def wait_gone(fetch, timeout=60):
    deadline = time.time() + timeout
    while True:
        try:
            fetch()
        except Exception as e:  # noqa: BLE001 - each client has its own NotFound
            if "404" in str(e) or "NotFound" in type(e).__name__ or "could not be found" in str(e):
                return
            raise
        assert time.time() < deadline, "never deleted"
        time.sleep(0.2)


def main(binary):
    emu = Emulator(binary)
    checks = Checks("openstack-clients")
    try:
        def connect(user):
            u = emu.users[user]
            return openstack.connect(auth_url=emu.auth_url, username=user, password=u["password"],
                                     project_name=u["project"], user_domain_name=u["domain"],
                                     project_domain_name=u["domain"], region_name=emu.region)

        def cinder(user, version="3.70"):
            u = emu.users[user]
            auth = v3.Password(auth_url=emu.auth_url, username=user, password=u["password"],
                               project_name=u["project"], user_domain_name=u["domain"],
                               project_domain_name=u["domain"])
            return cinder_client.Client(version, session=ks_session.Session(auth=auth), region_name=emu.region)

        demo, admin = connect("demo"), connect("admin")
        cc, ca = cinder("demo"), cinder("admin")
        state = {}

        def keystone():
            assert demo.authorize()
            token = demo.session.get_token()
            by_token = openstack.connect(auth_type="v3token", auth_url=emu.auth_url, token=token,
                                         project_name="demo", project_domain_name="Default", region_name=emu.region)
            assert list(by_token.block_storage.volumes()) == []

        def sdk_volume_lifecycle():
            v = demo.block_storage.create_volume(size=1, name="sdk-vol", metadata={"tier": "gold"})
            v = wait(lambda: demo.block_storage.get_volume(v.id), "available")
            state["sdk_volume"] = v.id
            assert [x.id for x in demo.block_storage.volumes(details=True, name="sdk-vol")] == [v.id]
            demo.block_storage.update_volume(v, name="sdk-vol2")
            demo.block_storage.extend_volume(v, 2)
            v = wait(lambda: demo.block_storage.get_volume(v.id), "available")
            assert (v.size, v.name) == (2, "sdk-vol2"), v
            demo.block_storage.set_volume_metadata(v, owner="peer")
            assert demo.block_storage.get_volume_metadata(v).metadata["owner"] == "peer"

        def sdk_snapshots():
            s = demo.block_storage.create_snapshot(volume_id=state["sdk_volume"], name="sdk-snap")
            s = wait(lambda: demo.block_storage.get_snapshot(s.id), "available")
            assert [x.id for x in demo.block_storage.snapshots(details=True)] == [s.id]
            demo.block_storage.delete_snapshot(s)
            wait_gone(lambda: demo.block_storage.get_snapshot(s.id))

        def sdk_types_quotas_limits_zones():
            t = admin.block_storage.create_type(name="peer-type", extra_specs={"k": "v"})
            assert admin.block_storage.get_type(t.id).extra_specs == {"k": "v"}
            assert "peer-type" in [x.name for x in admin.block_storage.types()]
            admin.block_storage.delete_type(t)
            project = emu.users["demo"]["project_id"]
            assert admin.block_storage.get_quota_set(project).volumes is not None
            assert demo.block_storage.get_limits().absolute.max_total_volumes is not None
            assert "nova" in [z.name for z in demo.block_storage.availability_zones()]

        def nova_attach_detach():
            server = emu.add_server("peer-vm")
            assert server in [s.id for s in demo.compute.servers(details=True)]
            shown = demo.compute.get_server(server)
            assert shown.flavor is not None and shown.user_id, shown
            demo.compute.create_volume_attachment(server, volume_id=state["sdk_volume"])
            v = wait(lambda: demo.block_storage.get_volume(state["sdk_volume"]), "in-use")
            assert v.attachments[0]["server_id"] == server
            demo.compute.delete_volume_attachment(state["sdk_volume"], server)
            wait(lambda: demo.block_storage.get_volume(state["sdk_volume"]), "available")
            state["server"] = server

        def cinderclient_filters():
            v = cc.volumes.create(1, name="cc-vol", metadata={"tier": "silver"})
            wait(lambda: cc.volumes.get(v.id), "available")
            state["cc_volume"] = v.id
            # cinderclient sends metadata as a Python literal, {'tier': 'silver'}.
            assert [x.id for x in cc.volumes.list(search_opts={"metadata": {"tier": "silver"}})] == [v.id]
            names = [x.name for x in cc.volumes.list(sort="name:asc")]
            assert names == sorted(names), names
            assert [x.id for x in cc.volumes.list(search_opts={"name~": "cc-v"})] == [v.id]

        def cinderclient_attachments():
            a = cc.attachments.create(state["cc_volume"], {"host": "peer", "initiator": "iqn.peer"}, state["server"])
            cc.attachments.complete(a["id"])
            assert [x.id for x in cc.attachments.list()] == [a["id"]]
            cc.attachments.delete(a["id"])
            wait(lambda: cc.volumes.get(state["cc_volume"]), "available")

        def cinderclient_groups():
            gt = ca.group_types.create("peer-group-type")
            gt.set_keys({"consistent_group_snapshot_enabled": "<is> True"})
            vt = [t for t in ca.volume_types.list() if t.name == "__DEFAULT__"][0]
            g = ca.groups.create(gt.id, vt.id, name="peer-group")
            wait(lambda: ca.groups.get(g.id), "available")
            ca.groups.delete(g.id)
            wait_gone(lambda: ca.groups.get(g.id))
            ca.group_types.delete(gt.id)

        def cinderclient_backups():
            b = cc.backups.create(state["cc_volume"], name="peer-backup")
            wait(lambda: cc.backups.get(b.id), "available")
            restored = cc.restores.restore(b.id, name="peer-restored")
            wait(lambda: cc.volumes.get(restored.volume_id), "available")
            cc.volumes.delete(restored.volume_id)
            cc.backups.delete(b.id)
            wait_gone(lambda: cc.backups.get(b.id))

        def cinderclient_admin_routes():
            volume_services = ca.services.list(host="emulator", binary="cinder-volume")
            assert [x.host for x in volume_services] == ["emulator@lvmdriver-1"], volume_services
            pool = ca.pools.list(detailed=True)[0]
            caps = ca.capabilities.get(pool.name)
            # cinderclient flattens a detailed pool's capabilities onto the pool.
            assert caps.vendor_name == pool.vendor_name, (caps, pool)
            qos = ca.qos_specs.create("peer-qos", {"read_iops_sec": "100"})
            vt = [t for t in ca.volume_types.list() if t.name == "__DEFAULT__"][0]
            ca.qos_specs.associate(qos, vt.id)
            assert [a.id for a in ca.qos_specs.get_associations(qos)] == [vt.id]
            ca.qos_specs.disassociate_all(qos)
            ca.qos_specs.delete(qos)
            assert "peer-qos" not in [q.name for q in ca.qos_specs.list()]
            before = ca.quota_classes.get("default").volumes
            ca.quota_classes.update("default", volumes=before + 1)
            assert ca.quota_classes.get("default").volumes == before + 1
            ca.quota_classes.update("default", volumes=before)

        def cinderclient_transfers():
            v = cc.volumes.create(1, name="cc-gift")
            wait(lambda: cc.volumes.get(v.id), "available")
            t = cc.transfers.create(v.id, name="gift")
            wait(lambda: cc.volumes.get(v.id), "awaiting-transfer")
            assert [x.id for x in cc.transfers.list()] == [t.id]
            ca.transfers.accept(t.id, t.auth_key)
            moved = wait(lambda: ca.volumes.get(v.id), "available")
            assert getattr(moved, "os-vol-tenant-attr:tenant_id") == emu.users["admin"]["project_id"], moved
            ca.volumes.delete(v.id)
            wait_gone(lambda: ca.volumes.get(v.id))

        def cleanup():
            demo.block_storage.delete_volume(state["sdk_volume"])
            cc.volumes.delete(state["cc_volume"])
            wait_gone(lambda: demo.block_storage.get_volume(state["sdk_volume"]))
            wait_gone(lambda: cc.volumes.get(state["cc_volume"]))

        for name, fn in [("keystone password and token auth", keystone),
                         ("openstacksdk volume lifecycle", sdk_volume_lifecycle),
                         ("openstacksdk snapshots", sdk_snapshots),
                         ("openstacksdk types, quotas, limits, zones", sdk_types_quotas_limits_zones),
                         ("openstacksdk nova attach/detach", nova_attach_detach),
                         ("cinderclient filters (python literal, sort, like)", cinderclient_filters),
                         ("cinderclient attachments API", cinderclient_attachments),
                         ("cinderclient group types and groups", cinderclient_groups),
                         ("cinderclient backups and restore", cinderclient_backups),
                         ("cinderclient admin routes (services, pools, capabilities, qos, quota classes)",
                          cinderclient_admin_routes),
                         ("cinderclient volume transfers (3.55 route)", cinderclient_transfers),
                         ("volumes deleted", cleanup)]:
            checks.run(name, fn)
    finally:
        emu.stop()
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "target/debug/cinder-evs-csi"))
