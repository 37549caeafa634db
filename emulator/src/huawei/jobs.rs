//! Huawei jobs: made by EVS and ECS writes, and `GET /v1/{project_id}/jobs/{job_id}` on both
//! services. Their status follows the resource they wait for (INIT → RUNNING → SUCCESS or
//! FAIL) as the store settles the world ([`crate::transitions::jobs`]).

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
use crate::store::Cloud;

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
