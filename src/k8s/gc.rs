//! `gc`: finds the cloud volumes, snapshots and attachments this cluster left behind, and with
//! `--delete` removes them. A volume or snapshot is an orphan when it carries this cluster's id
//! (metadata `cinder-evs-csi/cluster-id`) but no PersistentVolume (`spec.csi.volumeHandle` of
//! this driver) or VolumeSnapshotContent (`status.snapshotHandle`) names it; an attachment is
//! an orphan when the server it joins is no Node of the cluster any more. Resources of another
//! cluster id, or without one, are never touched.
//!
//! Everything errs on the side of keeping: a listing that fails stops the run; volumes and
//! snapshots in a transition (being created, attached, deleted) are reported but left alone,
//! because the provisioner creates the PersistentVolume only after CreateVolume returns; with no
//! VolumeSnapshotContent API (snapshot CRDs absent) snapshots are not judged at all; and when no
//! Node yields a server id, attachments are not judged at all.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, PersistentVolume};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};

use super::KubeError;
use crate::cloud::types::{Snapshot, SnapshotStatus, Volume, VolumeStatus};
use crate::cloud::{Backend, CloudError};
use crate::contract::ownership::META_CLUSTER_ID;
use crate::contract::provider_id;

/// The Node annotation where kubelet records each CSI driver's node id (a JSON map).
const NODE_ID_ANNOTATION: &str = "csi.volume.kubernetes.io/nodeid";

/// Page size for the cloud listings.
const PAGE: u32 = 500;

/// What the collector works on.
#[derive(Clone, Debug)]
pub struct GcSettings {
    /// Only resources carrying this cluster id are considered.
    pub cluster_id: String,
    /// The CSI driver name in PersistentVolumes and Node annotations.
    pub driver_name: String,
    /// Remove what is found (otherwise only report it).
    pub delete: bool,
    /// How long one detach may take.
    pub detach_timeout: Duration,
}

/// The kind of an orphan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// An attachment of one of our volumes to a server that is no Node.
    Attachment,
    /// A snapshot no VolumeSnapshotContent names.
    Snapshot,
    /// A volume no PersistentVolume names.
    Volume,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Attachment => "attachment",
            Self::Snapshot => "snapshot",
            Self::Volume => "volume",
        }
    }
}

/// What was (or would be) done with an orphan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Dry run: would be removed.
    WouldRemove,
    /// Left alone, with the reason (e.g. a transition in progress).
    Kept(String),
    /// Removed.
    Removed,
    /// Removing failed.
    Failed(String),
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::WouldRemove => f.write_str("would remove (dry run)"),
            Self::Kept(why) => write!(f, "kept: {why}"),
            Self::Removed => f.write_str("removed"),
            Self::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

/// One orphan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// What it is.
    pub kind: Kind,
    /// The volume or snapshot id (for an attachment: the volume's).
    pub id: String,
    /// Its name (for an attachment: the server id).
    pub name: String,
    /// Its status in the cloud.
    pub status: String,
    /// What happened to it.
    pub action: Action,
}

/// Why the collector stopped.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// Kubernetes could not be asked.
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// The cloud could not be listed.
    #[error("cloud listing: {0}")]
    Cloud(#[from] CloudError),
}

/// What the cluster references.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterRefs {
    /// Volume ids named by our PersistentVolumes (with and without a `<cloud>:` prefix).
    pub volumes: BTreeSet<String>,
    /// Snapshot ids named by VolumeSnapshotContents; `None` when that API does not exist.
    pub snapshots: Option<BTreeSet<String>>,
    /// Server ids of the cluster's Nodes.
    pub servers: BTreeSet<String>,
}

/// Reads what the cluster references from PersistentVolumes, VolumeSnapshotContents and Nodes.
pub async fn cluster_refs(client: &kube::Client, driver_name: &str) -> Result<ClusterRefs, KubeError> {
    let mut refs = ClusterRefs::default();
    let pvs: kube::Api<PersistentVolume> = kube::Api::all(client.clone());
    for pv in pvs.list(&ListParams::default()).await.map_err(KubeError::api("list persistentvolumes"))? {
        if let Some(csi) = pv.spec.and_then(|s| s.csi).filter(|c| c.driver == driver_name) {
            insert_handle(&mut refs.volumes, &csi.volume_handle);
        }
    }
    let gvk = GroupVersionKind::gvk("snapshot.storage.k8s.io", "v1", "VolumeSnapshotContent");
    let contents: kube::Api<DynamicObject> =
        kube::Api::all_with(client.clone(), &ApiResource::from_gvk(&gvk));
    refs.snapshots = match contents.list(&ListParams::default()).await {
        Ok(list) => {
            let mut ids = BTreeSet::new();
            for content in list {
                let ours = content.data["spec"]["driver"].as_str() == Some(driver_name);
                // Statically provisioned contents carry the handle in spec.source until bound.
                let handles = [
                    &content.data["status"]["snapshotHandle"],
                    &content.data["spec"]["source"]["snapshotHandle"],
                ];
                for handle in handles.into_iter().filter_map(|h| h.as_str()) {
                    if ours {
                        insert_handle(&mut ids, handle);
                    }
                }
            }
            Some(ids)
        }
        Err(kube::Error::Api(status)) if status.code == 404 => None,
        Err(e) => return Err(KubeError::api("list volumesnapshotcontents")(e)),
    };
    let nodes: kube::Api<Node> = kube::Api::all(client.clone());
    for node in nodes.list(&ListParams::default()).await.map_err(KubeError::api("list nodes"))? {
        if let Some(id) =
            node.spec.and_then(|s| s.provider_id).and_then(|p| provider_id::server_id(&p).map(str::to_string))
        {
            refs.servers.insert(id);
        }
        let annotation = node.metadata.annotations.as_ref().and_then(|a| a.get(NODE_ID_ANNOTATION));
        if let Some(map) = annotation.and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok())
            && let Some(id) = map[driver_name].as_str()
        {
            refs.servers.insert(id.to_string());
        }
    }
    Ok(refs)
}

/// Records a CSI handle, and its bare id when it has a `<cloud>:` prefix; matching either way
/// can only keep more, never remove more.
fn insert_handle(set: &mut BTreeSet<String>, handle: &str) {
    set.insert(handle.to_string());
    if let Some((_, id)) = handle.split_once(':') {
        set.insert(id.to_string());
    }
}

/// Every volume of the cloud, page by page.
pub async fn all_volumes(backend: &dyn Backend) -> Result<Vec<Volume>, CloudError> {
    let mut all = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = backend.list_volumes(Some(PAGE), marker.as_deref()).await?;
        all.extend(page.items);
        match page.next {
            Some(next) if Some(&next) != marker.as_ref() => marker = Some(next),
            _ => return Ok(all),
        }
    }
}

/// Every snapshot of the cloud, page by page.
pub async fn all_snapshots(backend: &dyn Backend) -> Result<Vec<Snapshot>, CloudError> {
    let mut all = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = backend.list_snapshots(None, Some(PAGE), marker.as_deref()).await?;
        all.extend(page.items);
        match page.next {
            Some(next) if Some(&next) != marker.as_ref() => marker = Some(next),
            _ => return Ok(all),
        }
    }
}

/// The orphans among `volumes` and `snapshots`, with the dry-run action (or why each is kept).
pub fn plan(
    refs: &ClusterRefs,
    volumes: &[Volume],
    snapshots: &[Snapshot],
    cluster_id: &str,
) -> Vec<Finding> {
    let ours = |metadata: &std::collections::BTreeMap<String, String>| {
        metadata.get(META_CLUSTER_ID).is_some_and(|c| c == cluster_id)
    };
    let mut findings = Vec::new();
    for volume in volumes.iter().filter(|v| ours(&v.metadata)) {
        if !refs.servers.is_empty() {
            for attachment in volume.attachments.iter().filter(|a| !refs.servers.contains(&a.server_id)) {
                findings.push(Finding {
                    kind: Kind::Attachment,
                    id: volume.id.clone(),
                    name: attachment.server_id.clone(),
                    status: volume.status.as_str().to_string(),
                    action: Action::WouldRemove,
                });
            }
        }
        if refs.volumes.contains(&volume.id) {
            continue;
        }
        let action = match &volume.status {
            VolumeStatus::Available | VolumeStatus::Error(_) => Action::WouldRemove,
            VolumeStatus::InUse => Action::Kept("attached; detach first".into()),
            other => Action::Kept(format!("in transition ({})", other.as_str())),
        };
        findings.push(Finding {
            kind: Kind::Volume,
            id: volume.id.clone(),
            name: volume.name.clone(),
            status: volume.status.as_str().to_string(),
            action,
        });
    }
    if let Some(referenced) = &refs.snapshots {
        for snapshot in snapshots.iter().filter(|s| ours(&s.metadata) && !referenced.contains(&s.id)) {
            let (status, action) = match &snapshot.status {
                SnapshotStatus::Available => ("available".to_string(), Action::WouldRemove),
                SnapshotStatus::Error(s) => (s.clone(), Action::WouldRemove),
                SnapshotStatus::Creating => {
                    ("creating".into(), Action::Kept("in transition (creating)".into()))
                }
                SnapshotStatus::Deleting => {
                    ("deleting".into(), Action::Kept("in transition (deleting)".into()))
                }
                SnapshotStatus::Other(s) => (s.clone(), Action::Kept(format!("in transition ({s})"))),
            };
            findings.push(Finding {
                kind: Kind::Snapshot,
                id: snapshot.id.clone(),
                name: snapshot.name.clone(),
                status,
                action,
            });
        }
    }
    findings.sort_by(|a, b| (a.kind, &a.id, &a.name).cmp(&(b.kind, &b.id, &b.name)));
    findings
}

/// Carries out the plan: detaches first, then deletes snapshots (a volume with snapshots
/// cannot go), then volumes. Each finding's action says how it went.
pub async fn apply(backend: &dyn Backend, findings: &mut [Finding], detach_timeout: Duration) {
    // `plan` sorts attachments, snapshots, volumes: the order removal needs.
    for finding in findings.iter_mut().filter(|f| f.action == Action::WouldRemove) {
        let result = async {
            let id = crate::cloud::backend::issued_id(&finding.id)?;
            match finding.kind {
                Kind::Attachment => {
                    backend
                        .detach(&id, &crate::cloud::backend::issued_id(&finding.name)?, detach_timeout)
                        .await
                }
                Kind::Snapshot => backend.delete_snapshot(&id).await,
                Kind::Volume => backend.delete_volume(&id).await,
            }
        }
        .await;
        finding.action = match result {
            Ok(()) => Action::Removed,
            Err(e) => Action::Failed(e.to_string()),
        };
    }
}

/// Lists the orphans and, when `settings.delete`, removes them.
pub async fn run(
    client: &kube::Client,
    backend: &dyn Backend,
    settings: &GcSettings,
) -> Result<Vec<Finding>, GcError> {
    let refs = cluster_refs(client, &settings.driver_name).await?;
    if refs.snapshots.is_none() {
        tracing::warn!(
            "no VolumeSnapshotContent API (snapshot CRDs not installed); snapshots are not judged"
        );
    }
    if refs.servers.is_empty() {
        tracing::warn!("no Node yields a server id; attachments are not judged");
    }
    let volumes = all_volumes(backend).await?;
    let snapshots = all_snapshots(backend).await?;
    let mut findings = plan(&refs, &volumes, &snapshots, &settings.cluster_id);
    if settings.delete {
        apply(backend, &mut findings, settings.detach_timeout).await;
    }
    Ok(findings)
}

/// The findings as an aligned text table (a header line only when there are none).
pub fn table(findings: &[Finding]) -> String {
    let header = ["KIND", "ID", "NAME/SERVER", "STATUS", "ACTION"];
    let rows: Vec<[String; 5]> = findings
        .iter()
        .map(|f| {
            [
                f.kind.as_str().to_string(),
                f.id.clone(),
                f.name.clone(),
                f.status.clone(),
                f.action.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; 5]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<width$}  ", width = widths[i]);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header);
    for row in &rows {
        line([&row[0], &row[1], &row[2], &row[3], &row[4]]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::types::VolumeAttachment;
    use std::collections::BTreeMap;

    fn volume(id: &str, cluster: Option<&str>, status: VolumeStatus, servers: &[&str]) -> Volume {
        let mut metadata = BTreeMap::new();
        if let Some(c) = cluster {
            metadata.insert(META_CLUSTER_ID.to_string(), c.to_string());
        }
        Volume {
            id: id.into(),
            name: format!("pvc-{id}"),
            size_gib: 1,
            status,
            zone: "nova".into(),
            volume_type: None,
            multiattach: false,
            attachments: servers
                .iter()
                .map(|s| VolumeAttachment { server_id: s.to_string(), device: None })
                .collect(),
            metadata,
            source_snapshot_id: None,
            source_volume_id: None,
            wwn: None,
        }
    }

    fn refs(volumes: &[&str], servers: &[&str]) -> ClusterRefs {
        ClusterRefs {
            volumes: volumes.iter().map(|s| s.to_string()).collect(),
            snapshots: Some(BTreeSet::new()),
            servers: servers.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn volumes_of_another_cluster_or_without_cluster_id_are_never_findings() {
        let volumes = [
            volume("a", Some("other"), VolumeStatus::Available, &["gone"]),
            volume("b", None, VolumeStatus::Available, &[]),
        ];
        assert_eq!(plan(&refs(&[], &["node"]), &volumes, &[], "mine"), vec![]);
    }

    #[test]
    fn volumes_in_transition_are_kept_and_settled_ones_would_be_removed() {
        let volumes = [
            volume("a", Some("mine"), VolumeStatus::Creating, &[]),
            volume("b", Some("mine"), VolumeStatus::Available, &[]),
            volume("c", Some("mine"), VolumeStatus::Error("error".into()), &[]),
        ];
        let actions: Vec<_> =
            plan(&refs(&[], &[]), &volumes, &[], "mine").into_iter().map(|f| f.action).collect();
        assert_eq!(
            actions,
            vec![Action::Kept("in transition (creating)".into()), Action::WouldRemove, Action::WouldRemove]
        );
    }

    #[test]
    fn attachments_are_not_judged_when_no_node_yields_a_server_id() {
        let volumes = [volume("a", Some("mine"), VolumeStatus::InUse, &["srv"])];
        assert_eq!(plan(&refs(&["a"], &[]), &volumes, &[], "mine"), vec![]);
    }

    #[test]
    fn a_prefixed_handle_protects_the_bare_id() {
        let mut set = BTreeSet::new();
        insert_handle(&mut set, "second:vol-1");
        assert!(set.contains("vol-1") && set.contains("second:vol-1"));
    }

    #[test]
    fn the_table_aligns_columns_under_the_header() {
        let findings = [Finding {
            kind: Kind::Volume,
            id: "vol-123".into(),
            name: "pvc-x".into(),
            status: "available".into(),
            action: Action::WouldRemove,
        }];
        let text = table(&findings);
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].find("ID"), lines[1].find("vol-123"));
        assert!(lines[1].ends_with("would remove (dry run)"), "{text}");
    }
}
