//! `cinder-evs-csi import`: adopt an existing cloud volume (or, with admin rights, existing
//! backend storage through Cinder's `os-volume-manage`) as a static PersistentVolume, and print
//! its manifest for `kubectl apply -f -`.
//!
//! Imported volumes are deliberately left without this cluster's id in their metadata, so that
//! `gc` never deletes them, and the PV's reclaim policy defaults to Retain.

use std::time::Duration;

use clap::Args;
use serde_json::json;

use crate::cloud::CloudError;
use crate::cloud::types::{ManageRef, ManageSpec, Volume};
use crate::contract::{CloudId, Handle};
use crate::csi::context;
use crate::csi::controller::Clouds;
use crate::csi::controller::topology;

/// Flags of the `import` mode.
#[derive(Clone, Debug, PartialEq, Eq, Args)]
pub struct ImportArgs {
    /// The cloud volume to adopt: its id (looked up in every configured cloud), or
    /// `<cloud>:<id>`.
    #[arg(long, conflicts_with_all = ["source_name", "source_id"], required_unless_present_any = ["source_name", "source_id"])]
    pub volume_id: Option<String>,
    /// Backend storage to manage first, by the backend's name for it (needs --host, admin).
    #[arg(long, requires = "host")]
    pub source_name: Option<String>,
    /// Backend storage to manage first, by the backend's id for it (needs --host, admin).
    #[arg(long, requires = "host", conflicts_with = "source_name")]
    pub source_id: Option<String>,
    /// The storage host of the managed storage (`host@backend#pool`).
    #[arg(long)]
    pub host: Option<String>,
    /// Volume type for managed storage.
    #[arg(long)]
    pub volume_type: Option<String>,
    /// Name of the PersistentVolume (default: `imported-<volume id>`).
    #[arg(long)]
    pub pv_name: Option<String>,
    /// StorageClass name written into the PV (empty: none).
    #[arg(long, default_value = "")]
    pub storage_class: String,
    /// Filesystem the node should expect (or format, if the volume is blank).
    #[arg(long, default_value = "ext4")]
    pub fs_type: String,
    /// `Filesystem` or `Block`.
    #[arg(long, default_value = "Filesystem")]
    pub volume_mode: String,
    /// PV access mode.
    #[arg(long, default_value = "ReadWriteOnce")]
    pub access_mode: String,
    /// PV reclaim policy; Retain keeps the data when the PV is deleted.
    #[arg(long, default_value = "Retain")]
    pub reclaim_policy: String,
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The cloud refused or failed a call.
    #[error(transparent)]
    Cloud(#[from] CloudError),
    /// The volume or cloud the flags name does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The flags contradict each other or name no valid id.
    #[error("{0}")]
    Invalid(String),
}

/// Finds or manages the volume in any configured cloud and renders its PersistentVolume, with
/// the handle the controller itself would write for it.
pub async fn run(clouds: &Clouds, driver_name: &str, args: &ImportArgs) -> Result<String, ImportError> {
    let (cloud, volume) = match (&args.volume_id, &args.source_name, &args.source_id) {
        (Some(text), _, _) => {
            let handle = Handle::<CloudId>::parse("--volume-id", text).map_err(|e| {
                ImportError::Invalid(format!("{e}; give the cloud's volume id, optionally as <cloud>:<id>"))
            })?;
            let located =
                clouds.locate_volume(&handle).await.map_err(|e| ImportError::NotFound(e.to_string()))?;
            let ((cloud, _), volume) = located.ok_or_else(|| {
                ImportError::NotFound(format!("volume {text} not found in any configured cloud"))
            })?;
            (cloud.to_string(), volume)
        }
        (None, name, id) => {
            let reference = match (name, id) {
                (Some(n), _) => ManageRef::Name(n.clone()),
                (None, Some(i)) => ManageRef::Id(i.clone()),
                (None, None) => {
                    return Err(ImportError::Invalid(
                        "give --volume-id, --source-name or --source-id".into(),
                    ));
                }
            };
            // Storage is managed in the default cloud (the global --cloud flag chooses it).
            let (cloud, backend) = clouds.backend(None).map_err(|e| ImportError::NotFound(e.to_string()))?;
            let spec = ManageSpec {
                host: args.host.clone().unwrap_or_default(),
                reference,
                name: args.pv_name.clone().unwrap_or_else(|| "imported".into()),
                volume_type: args.volume_type.clone(),
                zone: None,
            };
            let managed = backend.manage_volume(&spec).await?;
            let id = crate::cloud::backend::issued_id(&managed.id)?;
            (cloud.to_string(), backend.wait_volume_ready(&id, Duration::from_secs(300)).await?)
        }
    };
    let handle = clouds.handle(&cloud, &volume.id);
    Ok(manifest(&volume, &handle, driver_name, args))
}

/// The PersistentVolume manifest of an adopted volume, named by CSI `handle`, as YAML.
pub fn manifest(volume: &Volume, handle: &str, driver_name: &str, args: &ImportArgs) -> String {
    let name = args.pv_name.clone().unwrap_or_else(|| format!("imported-{}", volume.id));
    let mut csi = json!({
        "driver": driver_name,
        "volumeHandle": handle,
        "volumeAttributes": { context::CLOUD_VOLUME_ID: volume.id },
    });
    if args.volume_mode == "Filesystem" {
        csi["fsType"] = json!(args.fs_type);
    }
    let mut spec = json!({
        "capacity": { "storage": format!("{}Gi", volume.size_gib) },
        "accessModes": [args.access_mode],
        "persistentVolumeReclaimPolicy": args.reclaim_policy,
        "storageClassName": args.storage_class,
        "volumeMode": args.volume_mode,
        "csi": csi,
    });
    if !volume.zone.is_empty() {
        spec["nodeAffinity"] = json!({ "required": { "nodeSelectorTerms": [ { "matchExpressions": [
            { "key": topology::driver_zone_key(driver_name), "operator": "In", "values": [volume.zone] }
        ] } ] } });
    }
    let pv = json!({
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": { "name": name, "annotations": { "pv.kubernetes.io/provisioned-by": driver_name } },
        "spec": spec,
    });
    serde_yaml_ng::to_string(&pv).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ImportArgs,
    }

    #[test]
    fn the_manifest_names_the_volume_its_size_zone_and_driver() {
        let args =
            Wrapper::try_parse_from(["x", "--volume-id", "v1", "--storage-class", "standard"]).unwrap().args;
        let volume = crate::cloud::types::Volume {
            id: "v1".into(),
            name: "old".into(),
            size_gib: 7,
            status: crate::cloud::types::VolumeStatus::Available,
            zone: "az1".into(),
            volume_type: None,
            multiattach: false,
            attachments: vec![],
            metadata: Default::default(),
            source_snapshot_id: None,
            source_volume_id: None,
            wwn: None,
        };
        let pv: serde_json::Value =
            serde_yaml_ng::from_str(&manifest(&volume, "v1", "csi.example.io", &args)).unwrap();
        assert_eq!(pv["metadata"]["name"], "imported-v1");
        assert_eq!(pv["spec"]["capacity"]["storage"], "7Gi");
        assert_eq!(pv["spec"]["csi"]["volumeHandle"], "v1");
        assert_eq!(pv["spec"]["csi"]["driver"], "csi.example.io");
        assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert_eq!(pv["spec"]["storageClassName"], "standard");
        let term = &pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0];
        assert_eq!(term["key"], "topology.csi.example.io/zone");
        assert_eq!(term["values"][0], "az1");
    }

    #[test]
    fn a_volume_or_backend_storage_must_be_named() {
        assert!(Wrapper::try_parse_from(["x"]).is_err());
        assert!(Wrapper::try_parse_from(["x", "--source-name", "lun1"]).is_err(), "managing needs --host");
        assert!(Wrapper::try_parse_from(["x", "--source-name", "lun1", "--host", "h@b#p"]).is_ok());
    }
}
