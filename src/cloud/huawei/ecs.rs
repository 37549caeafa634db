//! ECS: attaching and detaching disks (job based) and counting a server's disks.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};

use super::auth::{Client, Request};
use super::endpoints::Service;
use super::fault::{self, Fault};
use crate::cloud::error::CloudError;
use crate::contract::{CloudId, UrlPath};

/// What ECS answered to an attach or detach request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Submitted {
    /// A job to wait for.
    Job(String),
    /// Accepted without a job id (nothing to wait for but the disk itself).
    Accepted,
    /// The server does not exist.
    ServerMissing,
    /// The disk is not attached to the server (a detach with nothing to do).
    NotAttached,
}

/// The attach request for `volume_id` on `server_id`.
pub fn attach_request(server_id: &CloudId, volume_id: &CloudId) -> Request {
    Request::new(
        "ecs.volume.attach",
        Service::Ecs,
        Method::POST,
        UrlPath::new("v1").project().word("cloudservers").id(server_id).word("attachvolume"),
    )
    .json(json!({ "volumeAttachment": { "volumeId": volume_id } }))
}

/// The detach request for `volume_id` on `server_id`.
pub fn detach_request(server_id: &CloudId, volume_id: &CloudId) -> Request {
    Request::new(
        "ecs.volume.detach",
        Service::Ecs,
        Method::DELETE,
        UrlPath::new("v1").project().word("cloudservers").id(server_id).word("detachvolume").id(volume_id),
    )
}

/// The job id of an accepted request.
fn job_of(body: &[u8]) -> Submitted {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match body["job_id"].as_str() {
        Some(id) => Submitted::Job(id.to_string()),
        None => Submitted::Accepted,
    }
}

/// An ECS client.
#[derive(Debug)]
pub struct Ecs {
    client: Arc<Client>,
}

impl Ecs {
    /// A client.
    pub fn new(client: Arc<Client>) -> Self {
        Self { client }
    }

    async fn submit(
        &self,
        request: Request,
        volume_id: &str,
        server_id: &str,
    ) -> Result<Result<Submitted, Fault>, CloudError> {
        let reply = self.client.send(&request).await?;
        if reply.status.is_success() {
            return Ok(Ok(job_of(&reply.body)));
        }
        let fault = fault::parse(&reply);
        if fault.server_missing() {
            return Ok(Ok(Submitted::ServerMissing));
        }
        if fault.not_attached() {
            return Ok(Ok(Submitted::NotAttached));
        }
        tracing::debug!(volume_id, server_id, error = %fault.describe(), operation = request.operation, "ECS refused");
        Ok(Err(fault))
    }

    /// Asks ECS to attach; a refusal is returned as the fault for the caller to judge
    /// (an "already attached" refusal is success once the disk shows the attachment).
    pub async fn attach(
        &self,
        server_id: &CloudId,
        volume_id: &CloudId,
    ) -> Result<Result<Submitted, Fault>, CloudError> {
        self.submit(attach_request(server_id, volume_id), volume_id, server_id).await
    }

    /// Asks ECS to detach; as for [`Ecs::attach`].
    pub async fn detach(
        &self,
        server_id: &CloudId,
        volume_id: &CloudId,
    ) -> Result<Result<Submitted, Fault>, CloudError> {
        self.submit(detach_request(server_id, volume_id), volume_id, server_id).await
    }

    /// Disks attached to the server (`GET .../cloudservers/{id}/block_device`).
    pub async fn attachment_count(&self, server_id: &CloudId) -> Result<usize, CloudError> {
        let request = Request::new(
            "ecs.block_device.list",
            Service::Ecs,
            Method::GET,
            UrlPath::new("v1").project().word("cloudservers").id(server_id).word("block_device"),
        );
        let reply = self.client.send(&request).await?;
        if !reply.status.is_success() {
            return Err(fault::to_error(&reply, "server", server_id));
        }
        attachment_count_from_json(&reply.json()?)
    }
}

/// The number of `volumeAttachments` of a block device listing.
pub fn attachment_count_from_json(body: &Value) -> Result<usize, CloudError> {
    body["volumeAttachments"]
        .as_array()
        .map(Vec::len)
        .ok_or_else(|| CloudError::Protocol("block device list without volumeAttachments".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRV_TEXT: &str = "5e000000-0000-4000-8000-000000000001";
    const VOL_TEXT: &str = "50000000-0000-4000-8000-000000000001";
    static SRV: std::sync::LazyLock<CloudId> =
        std::sync::LazyLock::new(|| CloudId::parse("id", SRV_TEXT).unwrap());
    static VOL: std::sync::LazyLock<CloudId> =
        std::sync::LazyLock::new(|| CloudId::parse("id", VOL_TEXT).unwrap());
    use crate::config::model::Cloud;

    fn cloud() -> Cloud {
        Cloud { name: "hw".into(), region: Some("cn-north-4".into()), ..Default::default() }
    }

    #[test]
    fn attach_posts_the_volume_to_the_server() {
        let call = attach_request(&SRV, &VOL).to_call(&cloud(), "p1").unwrap();
        assert_eq!(call.method, Method::POST);
        assert_eq!(
            call.url.as_str(),
            format!("https://ecs.cn-north-4.myhuaweicloud.com/v1/p1/cloudservers/{SRV_TEXT}/attachvolume")
        );
        let body: Value = serde_json::from_slice(call.body.as_deref().unwrap()).unwrap();
        assert_eq!(body, json!({"volumeAttachment": {"volumeId": VOL_TEXT}}));
    }

    #[test]
    fn detach_deletes_the_volume_from_the_server() {
        let call = detach_request(&SRV, &VOL).to_call(&cloud(), "p1").unwrap();
        assert_eq!(call.method, Method::DELETE);
        assert_eq!(
            call.url.as_str(),
            format!(
                "https://ecs.cn-north-4.myhuaweicloud.com/v1/p1/cloudservers/{SRV_TEXT}/detachvolume/{VOL_TEXT}"
            )
        );
        assert!(call.body.is_none());
    }

    #[test]
    fn accepted_requests_yield_their_job() {
        assert_eq!(job_of(br#"{"job_id": "70a599e0"}"#), Submitted::Job("70a599e0".into()));
        assert_eq!(job_of(b""), Submitted::Accepted);
    }

    #[test]
    fn block_devices_are_counted() {
        let body = json!({"attachableQuantity": {"free_scsi": 20}, "volumeAttachments": [
            {"serverId": "s", "volumeId": "a"}, {"serverId": "s", "volumeId": "b"}]});
        assert_eq!(attachment_count_from_json(&body).unwrap(), 2);
        assert!(attachment_count_from_json(&json!({})).is_err());
    }
}
