//! Huawei jobs follow the resource they wait for: INIT → RUNNING → SUCCESS or FAIL, with the
//! error code and reason EVS and ECS report.

use serde_json::json;

use crate::model::{Job, JobTarget};
use crate::world::World;

const RUNNING: &str = "RUNNING";
const SUCCESS: &str = "SUCCESS";
const FAIL: &str = "FAIL";

/// Moves every unfinished job to the status its resource is in; true when any changed.
pub fn settle(w: &mut World, now: u64) -> bool {
    let open: Vec<String> =
        w.jobs.values().filter(|j| j.status != SUCCESS && j.status != FAIL).map(|j| j.id.clone()).collect();
    let mut changed = false;
    for id in open {
        let mut job = w.jobs[&id].clone();
        if advance(w, &mut job, now) {
            w.jobs.insert(id, job);
            changed = true;
        }
    }
    changed
}

fn advance(w: &World, job: &mut Job, now: u64) -> bool {
    let before = (job.status.clone(), job.sub_jobs.iter().map(|s| s.status.clone()).collect::<Vec<_>>());
    let (status, failure) = if job.target == JobTarget::Batch {
        for sub in &mut job.sub_jobs {
            advance(w, sub, now);
        }
        let statuses: Vec<&str> = job.sub_jobs.iter().map(|s| s.status.as_str()).collect();
        if statuses.iter().any(|s| *s == RUNNING || *s == "INIT") {
            (RUNNING, None)
        } else if statuses.iter().all(|s| *s == SUCCESS) {
            (SUCCESS, None)
        } else {
            let failed = job.sub_jobs.iter().find(|s| s.status == FAIL);
            (
                FAIL,
                failed.map(|s| {
                    (s.error_code.clone().unwrap_or_default(), s.fail_reason.clone().unwrap_or_default())
                }),
            )
        }
    } else {
        outcome(w, &job.target)
    };
    job.status = status.to_string();
    if status == SUCCESS || status == FAIL {
        job.end_ms.get_or_insert(now);
    }
    // A created disk is named by its job (at once, unless ids come from finished jobs only).
    if let JobTarget::CreateVolume { volume_id } = &job.target
        && status == SUCCESS
    {
        job.entities["volume_id"] = json!(volume_id);
    }
    if let Some((code, reason)) = failure {
        job.error_code = Some(code);
        job.fail_reason = Some(reason);
    }
    let after = (job.status.clone(), job.sub_jobs.iter().map(|s| s.status.clone()).collect::<Vec<_>>());
    before != after
}

type Outcome = (&'static str, Option<(String, String)>);

fn fail(code: &str, reason: &str) -> Outcome {
    (FAIL, Some((code.to_string(), reason.to_string())))
}

/// Where the resource a job waits for stands.
fn outcome(w: &World, target: &JobTarget) -> Outcome {
    match target {
        JobTarget::CreateVolume { volume_id } => match w.volume(volume_id).map(|v| v.status.as_str()) {
            None => fail("EVS.2024", "volume is error!"),
            Some("creating") => (RUNNING, None),
            Some("error") => fail("EVS.2024", "volume is error!"),
            Some(_) => (SUCCESS, None),
        },
        JobTarget::DeleteVolume { volume_id } => match w.volume(volume_id).map(|v| v.status.as_str()) {
            None => (SUCCESS, None),
            Some("deleting") => (RUNNING, None),
            Some(_) => fail("EVS.2020", "volume is error_deleting!"),
        },
        JobTarget::ExtendVolume { volume_id, new_size } => match w.volume(volume_id) {
            None => fail("EVS.5404", "the volume went away while extending"),
            Some(v) if v.status == "extending" => (RUNNING, None),
            Some(v) if v.status == "error_extending" => fail("EVS.2026", "volume is error_extending!"),
            Some(v) if v.size >= *new_size => (SUCCESS, None),
            Some(_) => fail("EVS.2026", "volume is error_extending!"),
        },
        JobTarget::ModifyQos { volume_id } => match w.volume(volume_id) {
            None => fail("EVS.5404", "the volume went away while its QoS changed"),
            Some(_) => (SUCCESS, None),
        },
        JobTarget::AttachVolume { volume_id, server_id } => {
            let Some(volume) = w.volume(volume_id) else {
                return fail("Ecs.0205", "Failed to call the Nova API to attach the disk: it went away");
            };
            match volume.attachments.iter().find(|a| a.server_id.as_deref() == Some(server_id.as_str())) {
                Some(a) if a.status == "attached" => (SUCCESS, None),
                Some(_) => (RUNNING, None),
                None => fail("Ecs.0000", "attaching the volume failed"),
            }
        }
        JobTarget::DetachVolume { volume_id, server_id } => {
            let Some(volume) = w.volume(volume_id) else { return (SUCCESS, None) };
            match volume.attachments.iter().find(|a| a.server_id.as_deref() == Some(server_id.as_str())) {
                None => (SUCCESS, None),
                Some(_) if volume.status == "detaching" => (RUNNING, None),
                Some(_) => fail("Ecs.0000", "detaching the volume failed"),
            }
        }
        JobTarget::Batch => (RUNNING, None),
    }
}
