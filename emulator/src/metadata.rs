//! The instance metadata service (OpenStack and EC2 flavours) describing the server that is
//! this host, so a node learns its server id and availability zone.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};

use super::errors::{ApiError, Family};
use super::model::Server;
use super::store::Cloud;

/// The metadata routes (served on their own listener).
pub fn router(cloud: Cloud) -> Router {
    Router::new()
        .route("/openstack", get(openstack_versions))
        .route("/openstack/", get(openstack_versions))
        .route("/openstack/{version}/meta_data.json", get(meta_data))
        .route("/openstack/{version}/network_data.json", get(network_data))
        .route("/latest/meta-data/instance-id", get(instance_id))
        .route("/latest/meta-data/hostname", get(hostname))
        .route("/latest/meta-data/placement/availability-zone", get(zone))
        .with_state(cloud)
}

fn this_host(cloud: &Cloud) -> Result<Server, ApiError> {
    cloud
        .read(|w| w.servers.values().find(|s| s.this_host).cloned())
        .ok_or_else(|| ApiError::not_found(Family::Admin, "No server is configured as this host."))
}

async fn openstack_versions() -> &'static str {
    "2012-08-10\n2013-04-04\n2013-10-17\n2015-10-15\n2016-06-30\n2016-10-06\n2017-02-22\n2018-08-27\n2020-10-14\nlatest"
}

async fn meta_data(State(cloud): State<Cloud>) -> Result<Json<Value>, ApiError> {
    let server = this_host(&cloud)?;
    Ok(Json(json!({
        "uuid": server.id,
        "name": server.name,
        "hostname": server.name,
        "availability_zone": server.availability_zone,
        "project_id": server.project_id,
        "launch_index": 0,
        "meta": {},
        "devices": [],
        "public_keys": {},
    })))
}

async fn network_data() -> Json<Value> {
    Json(json!({"links": [], "networks": [], "services": []}))
}

async fn instance_id(State(cloud): State<Cloud>) -> Result<String, ApiError> {
    this_host(&cloud).map(|s| s.id)
}

async fn hostname(State(cloud): State<Cloud>) -> Result<String, ApiError> {
    this_host(&cloud).map(|s| s.name)
}

async fn zone(State(cloud): State<Cloud>) -> Result<String, ApiError> {
    this_host(&cloud).map(|s| s.availability_zone)
}
