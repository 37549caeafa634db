//! Asynchronous jobs (`GET /v1/{project_id}/jobs/{job_id}`), which EVS and ECS return for
//! creating, expanding and deleting disks and for attaching and detaching them; polled
//! through the shared wait engine.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::{Method, StatusCode};
use serde::Deserialize;

use super::auth::{Client, Request};
use super::endpoints::Service;
use super::fault;
use crate::cloud::error::CloudError;
use crate::cloud::wait::{Check, StatusSource, WaitKind, WaitSettings, Waiter};
use crate::contract::UrlPath;

/// Where a job is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobStatus {
    /// Being initialised.
    Init,
    /// In progress.
    Running,
    /// Done.
    Success,
    /// Failed.
    Fail,
    /// Anything else, kept verbatim.
    Other(String),
}

impl JobStatus {
    /// Parses the job API's spelling.
    pub fn parse(text: &str) -> Self {
        match text {
            "INIT" => Self::Init,
            "RUNNING" => Self::Running,
            "SUCCESS" => Self::Success,
            "FAIL" => Self::Fail,
            other => Self::Other(other.to_string()),
        }
    }
}

/// A job as the driver needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// Job id.
    pub id: String,
    /// Status.
    pub status: JobStatus,
    /// e.g. `createVolume`, `attachVolume`.
    pub job_type: String,
    /// Disks the job reports (its own, or its sub-jobs').
    pub volume_ids: Vec<String>,
    /// Error code of a failed job (or failed sub-job).
    pub error_code: Option<String>,
    /// Reason of a failed job.
    pub fail_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct JobJson {
    #[serde(default)]
    job_id: Option<String>,
    status: String,
    #[serde(default)]
    job_type: Option<String>,
    #[serde(default)]
    entities: Option<Entities>,
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    fail_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Entities {
    #[serde(default)]
    volume_id: Option<String>,
    #[serde(default)]
    sub_jobs: Vec<JobJson>,
}

impl Job {
    /// Decodes a job body; `id` names it when the body does not.
    pub fn from_json(body: &[u8], id: &str) -> Result<Self, CloudError> {
        let json: JobJson = serde_json::from_slice(body)
            .map_err(|e| CloudError::Protocol(format!("malformed job {id}: {e}")))?;
        let mut volume_ids = Vec::new();
        // The job's words reach gRPC messages and logs: cleaned like every cloud reason.
        let clean = |text: Option<String>| text.as_deref().and_then(crate::telemetry::reason::cloud_reason);
        let mut error_code = clean(json.error_code);
        let mut fail_reason = clean(json.fail_reason);
        let entities = json.entities.unwrap_or_default();
        volume_ids.extend(entities.volume_id);
        for sub in entities.sub_jobs {
            volume_ids.extend(sub.entities.and_then(|e| e.volume_id));
            if sub.status == "FAIL" {
                error_code = error_code.or(clean(sub.error_code));
                fail_reason = fail_reason.or(clean(sub.fail_reason));
            }
        }
        Ok(Job {
            id: json.job_id.unwrap_or_else(|| id.to_string()),
            status: JobStatus::parse(&json.status),
            job_type: json.job_type.unwrap_or_default(),
            volume_ids,
            error_code,
            fail_reason,
        })
    }

    /// The error of a failed job, from its code when known.
    pub fn error(&self, kind: &'static str, id: &str) -> CloudError {
        let reason = self.fail_reason.clone().unwrap_or_else(|| "no reason given".into());
        let described = match &self.error_code {
            Some(code) => format!("job {} ({}) failed: {code}: {reason}", self.id, self.job_type),
            None => format!("job {} ({}) failed: {reason}", self.id, self.job_type),
        };
        self.error_code
            .as_deref()
            .and_then(|code| fault::error_for_code(code, &described, kind, id))
            .unwrap_or(CloudError::ErrorState {
                kind,
                id: id.to_string(),
                status: "FAIL".into(),
                reason: Some(described),
            })
    }
}

/// What a waiter on a job concludes: done on success, failed on failure.
pub fn until_finished(job: Option<&Job>, job_id: &str, kind: &'static str, id: &str) -> Check {
    match job {
        None => Check::Fail(CloudError::NotFound { kind: "job", id: job_id.to_string() }),
        Some(job) => match job.status {
            JobStatus::Success => Check::Done,
            JobStatus::Fail => Check::Fail(job.error(kind, id)),
            _ => Check::Continue,
        },
    }
}

/// Polls jobs of one service for the wait engine.
#[derive(Debug)]
pub struct JobStates {
    client: Arc<Client>,
    service: Service,
}

impl JobStates {
    /// Reads one job; `None` when the service does not know it.
    pub async fn get(&self, job_id: &str) -> Result<Option<Job>, CloudError> {
        let operation = match self.service {
            Service::Evs => "evs.job.get",
            Service::Ecs => "ecs.job.get",
        };
        let request = Request::new(
            operation,
            self.service,
            Method::GET,
            UrlPath::new("v1").project().word("jobs").segment("job_id", job_id)?,
        );
        let reply = self.client.send(&request).await?;
        if reply.status.is_success() {
            return Job::from_json(&reply.body, job_id).map(Some);
        }
        let fault = fault::parse(&reply);
        // A job id the service never issued comes back as 404 or as Common.0011.
        if reply.status == StatusCode::NOT_FOUND || fault.code.as_deref() == Some("Common.0011") {
            return Ok(None);
        }
        Err(fault.to_error("job", job_id))
    }
}

#[async_trait::async_trait]
impl StatusSource for JobStates {
    type Item = Job;
    async fn fetch(
        &self,
        ids: &[String],
        _individually: &[String],
        _since: SystemTime,
    ) -> Result<HashMap<String, Option<Job>>, CloudError> {
        let mut out = HashMap::new();
        for id in ids {
            out.insert(id.clone(), self.get(id).await?);
        }
        Ok(out)
    }
}

/// Waits on the jobs of one service.
#[derive(Clone, Debug)]
pub struct Jobs {
    waiter: Waiter<JobStates>,
}

impl Jobs {
    /// Starts the poller for `service`'s jobs; must run inside the runtime.
    pub fn new(client: Arc<Client>, service: Service, settings: WaitSettings) -> Self {
        Self { waiter: Waiter::new(JobStates { client, service }, settings) }
    }

    /// Waits until `check` accepts the job.
    pub async fn wait(
        &self,
        job_id: &str,
        check: impl FnMut(Option<&Job>) -> Check,
        timeout: Duration,
        what: &str,
    ) -> Result<Option<Job>, CloudError> {
        self.wait_as(None, job_id, check, timeout, what).await
    }

    /// [`Jobs::wait`] for a job of `kind`, whose learned time it polls by.
    pub async fn wait_as(
        &self,
        kind: Option<&WaitKind>,
        job_id: &str,
        check: impl FnMut(Option<&Job>) -> Check,
        timeout: Duration,
        what: &str,
    ) -> Result<Option<Job>, CloudError> {
        self.waiter.wait_as(kind, job_id, None, check, timeout, what).await
    }

    /// Waits until the job succeeds; its failure is the error of `kind` `id`.
    pub async fn finish(
        &self,
        job_id: &str,
        kind: &'static str,
        id: &str,
        timeout: Duration,
    ) -> Result<Job, CloudError> {
        self.finish_as(None, job_id, kind, id, timeout).await
    }

    /// [`Jobs::finish`] for a job of `wait_kind`, whose learned time it polls by.
    pub async fn finish_as(
        &self,
        wait_kind: Option<&WaitKind>,
        job_id: &str,
        kind: &'static str,
        id: &str,
        timeout: Duration,
    ) -> Result<Job, CloudError> {
        let job = self
            .wait_as(
                wait_kind,
                job_id,
                |j| until_finished(j, job_id, kind, id),
                timeout,
                &format!("job {job_id} for {kind} {id}"),
            )
            .await?;
        job.ok_or_else(|| CloudError::NotFound { kind: "job", id: job_id.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const RUNNING: &str = r#"{"status": "RUNNING", "entities": {"volume_id": "bdf1bb37-f20f-4266-9a04-f43e0a127376"},
        "job_id": "4010a32d535527910153552b492c0002", "job_type": "createVolume",
        "begin_time": "2016-03-08T07:40:13.219Z", "end_time": "", "error_code": null, "fail_reason": null}"#;

    const BATCH: &str = r#"{"status": "SUCCESS", "entities": {"sub_jobs": [
        {"status": "SUCCESS", "entities": {"volume_id": "0b549095-4937-4849-8e4c-52aa027d64f7"},
         "job_id": "21917a8d52a19b040152a9f2f2e50041", "job_type": "createVolume", "error_code": null, "fail_reason": null},
        {"status": "SUCCESS", "entities": {"volume_id": "e7bca1a2-d3ed-434f-86f4-a1f11aa80072"},
         "job_id": "21917a8d52a19b040152a9f2f2f60042", "job_type": "createVolume", "error_code": null, "fail_reason": null}]},
        "job_id": "21917a8d52a19b040152a9f2f1eb003e", "job_type": "batchCreateVolume",
        "begin_time": "2016-02-04T01:43:37.193Z", "end_time": "2016-02-04T01:44:08.283Z", "error_code": null, "fail_reason": null}"#;

    #[test]
    fn a_running_create_job_already_names_its_volume() {
        let job = Job::from_json(RUNNING.as_bytes(), "x").unwrap();
        assert_eq!(job.status, JobStatus::Running);
        assert_eq!(job.id, "4010a32d535527910153552b492c0002");
        assert_eq!(job.volume_ids, vec!["bdf1bb37-f20f-4266-9a04-f43e0a127376".to_string()]);
        assert_eq!(job.error_code, None);
    }

    #[test]
    fn a_batch_job_names_the_volumes_of_its_sub_jobs() {
        let job = Job::from_json(BATCH.as_bytes(), "x").unwrap();
        assert_eq!(job.status, JobStatus::Success);
        assert_eq!(job.volume_ids.len(), 2);
        assert_eq!(job.volume_ids[1], "e7bca1a2-d3ed-434f-86f4-a1f11aa80072");
    }

    #[test]
    fn a_failed_job_maps_its_error_code() {
        let body = r#"{"status": "FAIL", "job_id": "j1", "job_type": "createVolume", "entities": {},
            "error_code": "EVS.2072", "fail_reason": "Volume type [SSD] in availability zone [AZ1] is sold out !"}"#;
        let job = Job::from_json(body.as_bytes(), "j1").unwrap();
        let error = job.error("volume", "pvc-1");
        assert!(
            matches!(&error, CloudError::QuotaExceeded(m) if m.contains("EVS.2072") && m.contains("sold out")),
            "{error:?}"
        );
        let unknown = Job { error_code: None, ..job };
        assert!(
            matches!(unknown.error("volume", "v"), CloudError::ErrorState { status, .. } if status == "FAIL")
        );
    }

    #[test]
    fn a_failed_jobs_reason_is_cleaned_of_credentials_and_control_characters() {
        let body = r#"{"status": "FAIL", "job_id": "j2", "job_type": "createVolume", "entities": {},
            "error_code": "EVS.5400", "fail_reason": "backend https://svc:pa55w0rd@10.0.0.1/api said\u001b[2J no\nsecond line"}"#;
        let job = Job::from_json(body.as_bytes(), "j2").unwrap();
        let reason = job.fail_reason.as_deref().unwrap();
        assert!(
            !reason.contains("pa55w0rd") && !reason.contains('\u{1b}') && !reason.contains("second line"),
            "{reason}"
        );
        let CloudError::ErrorState { reason: Some(described), .. } =
            (Job { error_code: None, ..job }).error("volume", "v")
        else {
            panic!("an error state")
        };
        assert!(described.contains("https://<redacted>@10.0.0.1/api said"), "{described}");
    }

    #[test]
    fn job_states_decide_the_wait() {
        let job =
            |status: &str| Job::from_json(format!(r#"{{"status": "{status}"}}"#).as_bytes(), "j").unwrap();
        assert!(matches!(until_finished(Some(&job("INIT")), "j", "volume", "v"), Check::Continue));
        assert!(matches!(until_finished(Some(&job("RUNNING")), "j", "volume", "v"), Check::Continue));
        assert!(matches!(until_finished(Some(&job("SUCCESS")), "j", "volume", "v"), Check::Done));
        assert!(matches!(until_finished(Some(&job("FAIL")), "j", "volume", "v"), Check::Fail(_)));
        assert!(matches!(
            until_finished(None, "j", "volume", "v"),
            Check::Fail(CloudError::NotFound { kind: "job", .. })
        ));
    }

    /// A job service whose jobs walk INIT -> RUNNING -> final, one step per poll.
    struct Scripted {
        steps: Mutex<HashMap<String, Vec<&'static str>>>,
        polls: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl StatusSource for Arc<Scripted> {
        type Item = Job;
        async fn fetch(
            &self,
            ids: &[String],
            _individually: &[String],
            _since: SystemTime,
        ) -> Result<HashMap<String, Option<Job>>, CloudError> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            let mut steps = self.steps.lock().unwrap();
            Ok(ids
                .iter()
                .map(|id| {
                    let job = steps.get_mut(id).map(|s| {
                        let status = if s.len() > 1 { s.remove(0) } else { s[0] };
                        let body = format!(
                            r#"{{"status": "{status}", "job_id": "{id}", "job_type": "attachVolume", "error_code": {}, "fail_reason": {}}}"#,
                            if status == "FAIL" { r#""EVS.2068""# } else { "null" },
                            if status == "FAIL" { r#""locked""# } else { "null" }
                        );
                        Job::from_json(body.as_bytes(), id).unwrap()
                    });
                    (id.clone(), job)
                })
                .collect())
        }
    }

    fn scripted(jobs: &[(&str, Vec<&'static str>)]) -> Arc<Scripted> {
        Arc::new(Scripted {
            steps: Mutex::new(jobs.iter().map(|(id, s)| (id.to_string(), s.clone())).collect()),
            polls: AtomicUsize::new(0),
        })
    }

    #[tokio::test]
    async fn the_wait_engine_follows_a_job_to_success() {
        let source = scripted(&[("j1", vec!["INIT", "RUNNING", "RUNNING", "SUCCESS"])]);
        let waiter = Waiter::new(source.clone(), WaitSettings::default());
        let job = waiter
            .wait("j1", None, |j| until_finished(j, "j1", "volume", "v1"), Duration::from_secs(30), "j1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job.status, JobStatus::Success);
        assert!(source.polls.load(Ordering::SeqCst) >= 4, "each state was observed");
    }

    #[tokio::test]
    async fn the_wait_engine_turns_a_failed_job_into_its_error() {
        let source = scripted(&[("j2", vec!["RUNNING", "FAIL"])]);
        let waiter = Waiter::new(source, WaitSettings::default());
        let error = waiter
            .wait("j2", None, |j| until_finished(j, "j2", "volume", "v1"), Duration::from_secs(30), "j2")
            .await
            .unwrap_err();
        assert!(
            matches!(&error, CloudError::Conflict(m) if m.contains("EVS.2068") && m.contains("locked")),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn an_unknown_job_fails_the_wait() {
        let waiter = Waiter::new(scripted(&[]), WaitSettings::default());
        let error = waiter
            .wait(
                "nope",
                None,
                |j| until_finished(j, "nope", "volume", "v1"),
                Duration::from_secs(30),
                "nope",
            )
            .await
            .unwrap_err();
        assert_eq!(error, CloudError::NotFound { kind: "job", id: "nope".into() });
    }
}
