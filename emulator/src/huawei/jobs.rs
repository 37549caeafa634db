//! Huawei jobs: made by EVS and ECS writes, their status following the resource they wait
//! for (INIT → RUNNING → SUCCESS or FAIL), and `GET /v1/{project_id}/jobs/{job_id}` on both
//! services.

use axum::Json;
use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use super::Ctx;
use crate::bootstrap::keystone_id;
use crate::clock::{iso, now_ms};
use crate::errors::{ApiError, ApiResult, Family};
use crate::model::{Job, JobTarget};
use crate::store::{Cloud, World};

const RUNNING: &str = "RUNNING";
const SUCCESS: &str = "SUCCESS";
const FAIL: &str = "FAIL";

/// The job routes of both services.
pub fn routes() -> Router<Cloud> {
    Router::new()
        .route("/evs/v1/{project_id}/jobs/{job_id}", get(show_evs))
        .route("/ecs/v1/{project_id}/jobs/{job_id}", get(show_ecs))
}

/// A new job in INIT; the next settle moves it on.
pub fn new_job(project_id: &str, service: &str, job_type: &str, target: JobTarget, entities: Value) -> Job {
    Job {
        id: keystone_id(),
        project_id: project_id.to_string(),
        service: service.to_string(),
        job_type: job_type.to_string(),
        status: "INIT".into(),
        target,
        entities,
        sub_jobs: Vec::new(),
        begin_ms: now_ms(),
        end_ms: None,
        error_code: None,
        fail_reason: None,
    }
}

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

/// `2016-03-08T07:40:13.219Z`.
fn job_time(ms: u64) -> String {
    format!("{}Z", &iso(ms)[..23])
}

/// The JSON view of a job.
pub fn view(job: &Job) -> Value {
    let mut entities = job.entities.clone();
    if job.target == JobTarget::Batch {
        entities["sub_jobs"] = job.sub_jobs.iter().map(view).collect();
    }
    json!({
        "status": job.status, "entities": entities, "job_id": job.id, "job_type": job.job_type,
        "begin_time": job_time(job.begin_ms), "end_time": job.end_ms.map(job_time).unwrap_or_default(),
        "error_code": job.error_code, "fail_reason": job.fail_reason,
    })
}

fn show(cloud: &Cloud, ctx: &Ctx, service: &str, job_id: &str, family: Family) -> ApiResult<Json<Value>> {
    cloud.read(|w| {
        let job = w.jobs.get(job_id).filter(|j| j.project_id == ctx.auth.project_id && j.service == service);
        let job = job.ok_or_else(|| {
            ApiError::coded(family, StatusCode::BAD_REQUEST, "Common.0011", "query job fail.")
        })?;
        Ok(Json(view(job)))
    })
}

async fn show_evs(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, job_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    show(&cloud, &ctx, "evs", &job_id, Family::Evs)
}

async fn show_ecs(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, job_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    show(&cloud, &ctx, "ecs", &job_id, Family::Ecs)
}
