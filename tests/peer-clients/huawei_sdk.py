#!/usr/bin/env python3
"""Huawei's official Python SDKs (huaweicloudsdkevs/ecs, unmodified) against the emulator's
per-service listeners: EVS create (v2.1 job), list, show, update, resize, tags, snapshots, and
ECS attach/detach, each followed by its job.

    python3 tests/peer-clients/huawei_sdk.py target/debug/cinder-evs-csi
"""
import sys
import time

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions import exceptions
from huaweicloudsdkecs.v2 import EcsClient
from huaweicloudsdkecs.v2 import model as ecs_model
from huaweicloudsdkevs.v2 import EvsClient
from huaweicloudsdkevs.v2 import model as evs

from emulator import Checks, Emulator


def wait_job(client, request_type, job_id, timeout=60):
    deadline = time.time() + timeout
    while True:
        job = client.show_job(request_type(job_id=job_id))
        if job.status in ("SUCCESS", "FAIL"):
            assert job.status == "SUCCESS", "job %s ended %s: %s" % (job_id, job.status, job.fail_reason)
            return job
        assert time.time() < deadline, "job %s still %s" % (job_id, job.status)
        time.sleep(0.2)


def wait_volume(client, volume_id, status, timeout=60):
    deadline = time.time() + timeout
    while True:
        volume = client.show_volume(evs.ShowVolumeRequest(volume_id=volume_id)).volume
        if volume.status == status:
            return volume
        assert time.time() < deadline, "disk %s still %s" % (volume_id, volume.status)
        time.sleep(0.2)


def main(binary):
    emu = Emulator(binary)
    checks = Checks("huawei-sdk")
    try:
        project = emu.users["demo"]["project_id"]
        credentials = BasicCredentials(emu.ak, emu.sk, project)
        evs_client = EvsClient.new_builder().with_credentials(credentials).with_endpoint(emu.urls["evs"]).build()
        ecs_client = EcsClient.new_builder().with_credentials(credentials).with_endpoint(emu.urls["ecs"]).build()
        state = {}

        def create():
            option = evs.CreateVolumeOption(availability_zone="nova", volume_type="SSD", size=10, name="peer-disk")
            reply = evs_client.create_volume(evs.CreateVolumeRequest(body=evs.CreateVolumeRequestBody(volume=option)))
            assert reply.job_id, reply
            job = wait_job(evs_client, evs.ShowJobRequest, reply.job_id)
            volume_id = (reply.volume_ids or [None])[0] or job.entities.volume_id
            assert volume_id, job
            state["volume"] = volume_id
            wait_volume(evs_client, volume_id, "available")

        def listing():
            found = evs_client.list_volumes(evs.ListVolumesRequest(limit=10, name="peer-disk"))
            assert found.count == 1 and found.volumes[0].id == state["volume"], found

        def show():
            volume = evs_client.show_volume(evs.ShowVolumeRequest(volume_id=state["volume"])).volume
            assert (volume.size, volume.volume_type, volume.availability_zone) == (10, "SSD", "nova"), volume

        def update():
            body = evs.UpdateVolumeRequestBody(volume=evs.UpdateVolumeOption(name="peer-renamed"))
            reply = evs_client.update_volume(evs.UpdateVolumeRequest(volume_id=state["volume"], body=body))
            assert reply.name == "peer-renamed" and reply.id == state["volume"], reply

        def resize():
            body = evs.ResizeVolumeRequestBody(os_extend=evs.OsExtend(new_size=20))
            reply = evs_client.resize_volume(evs.ResizeVolumeRequest(volume_id=state["volume"], body=body))
            wait_job(evs_client, evs.ShowJobRequest, reply.job_id)
            assert wait_volume(evs_client, state["volume"], "available").size == 20

        def tags():
            tag = evs.Tag(key="team", value="storage")
            body = evs.BatchCreateVolumeTagsRequestBody(action="create", tags=[tag])
            evs_client.batch_create_volume_tags(evs.BatchCreateVolumeTagsRequest(volume_id=state["volume"], body=body))
            shown = evs_client.show_volume_tags(evs.ShowVolumeTagsRequest(volume_id=state["volume"]))
            assert {t.key: t.value for t in shown.tags} == {"team": "storage"}, shown
            body = evs.BatchDeleteVolumeTagsRequestBody(action="delete", tags=[evs.DeleteTagsOption(key="team")])
            evs_client.batch_delete_volume_tags(evs.BatchDeleteVolumeTagsRequest(volume_id=state["volume"], body=body))
            assert evs_client.show_volume_tags(evs.ShowVolumeTagsRequest(volume_id=state["volume"])).tags == []

        def snapshots():
            option = evs.CreateSnapshotOption(volume_id=state["volume"], name="peer-snap")
            made = evs_client.create_snapshot(evs.CreateSnapshotRequest(body=evs.CreateSnapshotRequestBody(snapshot=option)))
            sid = made.snapshot.id
            deadline = time.time() + 60
            while evs_client.show_snapshot(evs.ShowSnapshotRequest(snapshot_id=sid)).snapshot.status != "available":
                assert time.time() < deadline, "snapshot never available"
                time.sleep(0.2)
            listed = evs_client.list_snapshots(evs.ListSnapshotsRequest(volume_id=state["volume"]))
            assert [s.id for s in listed.snapshots] == [sid], listed
            evs_client.delete_snapshot(evs.DeleteSnapshotRequest(snapshot_id=sid))
            while True:
                try:
                    evs_client.show_snapshot(evs.ShowSnapshotRequest(snapshot_id=sid))
                except exceptions.ClientRequestException as e:
                    assert e.status_code == 404, e
                    break
                assert time.time() < deadline, "snapshot never deleted"
                time.sleep(0.2)

        def attach_detach():
            server = emu.add_server("peer-vm")
            option = ecs_model.AttachServerVolumeOption(volume_id=state["volume"], device="/dev/vdb")
            body = ecs_model.AttachServerVolumeRequestBody(volume_attachment=option)
            reply = ecs_client.attach_server_volume(ecs_model.AttachServerVolumeRequest(server_id=server, body=body))
            wait_job(ecs_client, ecs_model.ShowJobRequest, reply.job_id)
            volume = wait_volume(evs_client, state["volume"], "in-use")
            assert volume.attachments[0].server_id == server, volume.attachments
            reply = ecs_client.detach_server_volume(
                ecs_model.DetachServerVolumeRequest(server_id=server, volume_id=state["volume"]))
            wait_job(ecs_client, ecs_model.ShowJobRequest, reply.job_id)
            assert wait_volume(evs_client, state["volume"], "available").attachments == []

        def refused():
            bad = BasicCredentials(emu.ak, "not-the-secret", project)
            client = EvsClient.new_builder().with_credentials(bad).with_endpoint(emu.urls["evs"]).build()
            try:
                client.list_volumes(evs.ListVolumesRequest(limit=1))
            except exceptions.ClientRequestException as e:
                assert e.status_code == 401, e
            else:
                raise AssertionError("a wrong secret key was accepted")

        def delete():
            reply = evs_client.delete_volume(evs.DeleteVolumeRequest(volume_id=state["volume"]))
            wait_job(evs_client, evs.ShowJobRequest, reply.job_id)
            assert evs_client.list_volumes(evs.ListVolumesRequest()).count == 0

        for name, fn in [("evs create (v2.1 job)", create), ("evs list", listing), ("evs show", show),
                         ("evs update (flat answer)", update), ("evs resize (job)", resize), ("evs tags", tags),
                         ("evs snapshots", snapshots), ("ecs attach/detach (jobs)", attach_detach),
                         ("a wrong secret key is refused", refused), ("evs delete (job)", delete)]:
            checks.run(name, fn)
    finally:
        emu.stop()
    return checks.finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "target/debug/cinder-evs-csi"))
