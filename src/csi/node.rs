//! The CSI Node service. This mode needs no cloud credentials: it only knows the node's
//! identity and (as the node room lands) the host's devices and mounts.

use tonic::{Request, Response, Status};

use super::observe::Observer;
use super::pb::{self, node_server::Node};
use super::status::CsiError;

/// Node service state.
#[derive(Debug)]
pub struct NodeService {
    node_id: String,
    observer: Observer,
}

impl NodeService {
    /// A node service answering for the server `node_id`.
    pub fn new(node_id: String, observer: Observer) -> Self {
        Self { node_id, observer }
    }
}

/// The answer of an RPC that this build does not provide yet.
async fn unimplemented<T>(method: &'static str) -> Result<T, Status> {
    Err(CsiError::Unimplemented(method).into())
}

#[tonic::async_trait]
impl Node for NodeService {
    async fn node_stage_volume(
        &self,
        request: Request<pb::NodeStageVolumeRequest>,
    ) -> Result<Response<pb::NodeStageVolumeResponse>, Status> {
        let method = "NodeStageVolume";
        self.observer.call(method, request, |_| unimplemented(method)).await
    }

    async fn node_unstage_volume(
        &self,
        request: Request<pb::NodeUnstageVolumeRequest>,
    ) -> Result<Response<pb::NodeUnstageVolumeResponse>, Status> {
        let method = "NodeUnstageVolume";
        self.observer.call(method, request, |_| unimplemented(method)).await
    }

    async fn node_publish_volume(
        &self,
        request: Request<pb::NodePublishVolumeRequest>,
    ) -> Result<Response<pb::NodePublishVolumeResponse>, Status> {
        let method = "NodePublishVolume";
        self.observer.call(method, request, |_| unimplemented(method)).await
    }

    async fn node_unpublish_volume(
        &self,
        request: Request<pb::NodeUnpublishVolumeRequest>,
    ) -> Result<Response<pb::NodeUnpublishVolumeResponse>, Status> {
        let method = "NodeUnpublishVolume";
        self.observer.call(method, request, |_| unimplemented(method)).await
    }

    async fn node_get_volume_stats(
        &self,
        request: Request<pb::NodeGetVolumeStatsRequest>,
    ) -> Result<Response<pb::NodeGetVolumeStatsResponse>, Status> {
        let method = "NodeGetVolumeStats";
        self.observer.call(method, request, |_| unimplemented(method)).await
    }

    async fn node_expand_volume(
        &self,
        request: Request<pb::NodeExpandVolumeRequest>,
    ) -> Result<Response<pb::NodeExpandVolumeResponse>, Status> {
        let method = "NodeExpandVolume";
        self.observer.call(method, request, |_| unimplemented(method)).await
    }

    async fn node_get_capabilities(
        &self,
        request: Request<pb::NodeGetCapabilitiesRequest>,
    ) -> Result<Response<pb::NodeGetCapabilitiesResponse>, Status> {
        // Staging, stats and expansion are advertised only once they work.
        self.observer
            .call("NodeGetCapabilities", request, |_| async {
                Ok(pb::NodeGetCapabilitiesResponse { capabilities: Vec::new() })
            })
            .await
    }

    async fn node_get_info(
        &self,
        request: Request<pb::NodeGetInfoRequest>,
    ) -> Result<Response<pb::NodeGetInfoResponse>, Status> {
        self.observer
            .call("NodeGetInfo", request, |_| async {
                Ok(pb::NodeGetInfoResponse {
                    node_id: self.node_id.clone(),
                    max_volumes_per_node: 0,
                    accessible_topology: None,
                })
            })
            .await
    }
}
