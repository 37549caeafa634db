//! Nova: attach and detach volumes through `os-volume_attachments`.

use std::sync::Arc;

use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::OnceCell;

use super::fault;
use super::keystone::{COMPUTE_TYPES, Session, Token};
use super::microversion::{Microversion, VersionDocument, negotiate, version_root};
use crate::cloud::error::CloudError;
use crate::cloud::http::{Call, Reply};
use crate::contract::UrlPath;

/// Multiattach volumes need this compute microversion.
pub const MULTIATTACH: Microversion = Microversion::new(2, 60);

#[derive(Debug, Deserialize)]
struct AttachmentBody {
    #[serde(rename = "volumeAttachment")]
    volume_attachment: AttachmentJson,
}

#[derive(Debug, Deserialize)]
struct AttachmentJson {
    #[serde(default)]
    device: Option<String>,
}

/// A Nova client on a Keystone session.
#[derive(Debug)]
pub struct Nova {
    session: Arc<Session>,
    microversion: OnceCell<Option<Microversion>>,
}

impl Nova {
    /// A client; the microversion is negotiated on first use.
    pub fn new(session: Arc<Session>) -> Self {
        Self { session, microversion: OnceCell::new() }
    }

    fn endpoint(&self, token: &Token) -> Result<Url, CloudError> {
        self.session.endpoint(token, COMPUTE_TYPES)
    }

    async fn microversion(&self) -> Result<Option<Microversion>, CloudError> {
        self.microversion
            .get_or_try_init(|| async {
                let reply = self
                    .session
                    .send(|token| {
                        Ok(Call::new("nova.versions", Method::GET, version_root(&self.endpoint(token)?)))
                    })
                    .await?;
                if !reply.status.is_success() {
                    return Err(fault::to_error(&reply, "version document", ""));
                }
                let doc: VersionDocument = reply.json()?;
                Ok(doc.for_major(2).and_then(|info| negotiate(info, Microversion::new(2, 1), MULTIATTACH)))
            })
            .await
            .copied()
    }

    async fn send(
        &self,
        operation: &'static str,
        method: Method,
        path: &UrlPath,
        body: Option<serde_json::Value>,
    ) -> Result<Reply, CloudError> {
        let microversion = self.microversion().await?;
        self.session
            .send(|token| {
                let base = self.endpoint(token)?;
                if base.cannot_be_a_base() {
                    return Err(CloudError::Config(format!("compute endpoint {base} cannot hold a path")));
                }
                let url = path.join_to(&base);
                let mut call = Call::new(operation, method.clone(), url);
                if let Some(v) = microversion {
                    call = call.header("openstack-api-version", &format!("compute {v}"));
                    call = call.header("x-openstack-nova-api-version", &v.to_string());
                }
                if let Some(body) = &body {
                    call = call.json(body);
                }
                Ok(call)
            })
            .await
    }

    /// Asks Nova to attach; returns the device Nova reports.
    pub async fn attach(&self, server_id: &str, volume_id: &str) -> Result<Option<String>, CloudError> {
        let body = json!({ "volumeAttachment": { "volumeId": volume_id } });
        let reply = self
            .send(
                "nova.volume_attachment.create",
                Method::POST,
                &UrlPath::new("servers").segment("server_id", server_id)?.word("os-volume_attachments"),
                Some(body),
            )
            .await?;
        match reply.status {
            s if s.is_success() => Ok(reply.json::<AttachmentBody>()?.volume_attachment.device),
            StatusCode::NOT_FOUND => {
                Err(CloudError::NotFound { kind: "server or volume", id: format!("{server_id}/{volume_id}") })
            }
            StatusCode::BAD_REQUEST | StatusCode::CONFLICT => {
                Err(CloudError::Conflict(fault::message(&reply)))
            }
            _ => Err(fault::to_error(&reply, "server", server_id)),
        }
    }

    /// Volumes attached to the server; a missing server is an error.
    pub async fn attachment_count(&self, server_id: &str) -> Result<usize, CloudError> {
        let reply = self
            .send(
                "nova.volume_attachment.list",
                Method::GET,
                &UrlPath::new("servers").segment("server_id", server_id)?.word("os-volume_attachments"),
                None,
            )
            .await?;
        if !reply.status.is_success() {
            return Err(fault::to_error(&reply, "server", server_id));
        }
        let body: serde_json::Value = reply.json()?;
        body["volumeAttachments"]
            .as_array()
            .map(Vec::len)
            .ok_or_else(|| CloudError::Protocol("volume attachment list without volumeAttachments".into()))
    }

    /// Asks Nova to detach; a missing server or attachment is success.
    pub async fn detach(&self, server_id: &str, volume_id: &str) -> Result<(), CloudError> {
        let reply = self
            .send(
                "nova.volume_attachment.delete",
                Method::DELETE,
                &UrlPath::new("servers")
                    .segment("server_id", server_id)?
                    .word("os-volume_attachments")
                    .segment("volume_id", volume_id)?,
                None,
            )
            .await?;
        match reply.status {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            StatusCode::BAD_REQUEST | StatusCode::CONFLICT => {
                Err(CloudError::Conflict(fault::message(&reply)))
            }
            _ => Err(fault::to_error(&reply, "server", server_id)),
        }
    }
}
