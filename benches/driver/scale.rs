//! Scale rows (issue 19), by simulation: the emulator's project is filled with 10,000 volumes
//! (5,000 of them this cluster's) and 1,000 servers, written straight into its world rather
//! than created through the API, and a fresh controller works on it: a full ListVolumes walk,
//! a CreateVolume's name lookup, a tag repair pass on EVS, and the controller's memory.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use cinder_evs_csi::csi::pb;
use cinder_evs_csi::csi::pb::controller_client::ControllerClient;
use cinder_evs_csi::emulator::EmulatorHandle;
use cinder_evs_csi::emulator::bootstrap::resource_id;
use cinder_evs_csi::emulator::errors::Family;

use crate::process::Driver;
use crate::report::{Row, Verdict, mib, time};

const VOLUMES: usize = 10_000;
const OWNED: usize = 5_000;
const SERVERS: usize = 1_000;
const CLUSTER: &str = "bench-scale";
const CLUSTER_KEY: &str = "cinder-evs-csi/cluster-id";

/// Every scale row, appending to `rows`.
pub async fn run(dir: &Path, cloud: &EmulatorHandle, rows: &mut Vec<Row>) {
    // The rows before leave the shared emulator at their last latency; the lookup row counts the
    // calls of one create, which must not include a cold wait's polls through a 1 s transition.
    cloud.cloud().set_latency(cinder_evs_csi::emulator::store::Latency {
        default_ms: 0,
        transitions: BTreeMap::new(),
    });
    let cinder_yaml = dir.join("scale-cinder.yaml");
    std::fs::write(&cinder_yaml, crate::cloud::clouds_yaml(cloud, false)).expect("write clouds.yaml");
    let args = ["controller", "--cloud-config", cinder_yaml.to_str().unwrap(), "--cluster-id", CLUSTER];
    let driver = Driver::spawn(dir, "scale-cinder", &args);
    let mut client = ControllerClient::new(driver.ready().await);
    // The copies are made from a volume the API made.
    client.create_volume(create_request("scale-template")).await.expect("CreateVolume");
    populate(cloud);

    // ListVolumes, page by page as a CO walks it.
    let before = calls(cloud);
    let started = Instant::now();
    let (mut token, mut entries, mut pages) = (String::new(), 0usize, 0usize);
    loop {
        let request = pb::ListVolumesRequest { max_entries: 1000, starting_token: token.clone() };
        let page = match client.list_volumes(request).await {
            Ok(page) => page.into_inner(),
            Err(e) => {
                rows.push(Row::skipped(
                    "Scale: full ListVolumes walk",
                    "-",
                    &format!("ListVolumes failed: {}", e.code()),
                ));
                return;
            }
        };
        entries += page.entries.len();
        pages += 1;
        if page.next_token.is_empty() {
            break;
        }
        token = page.next_token;
    }
    let walk = started.elapsed();
    let walk_calls = calls(cloud) - before;
    // One listing call per CSI page is the least a walk can cost.
    rows.push(Row {
        name: format!(
            "Scale ({VOLUMES} volumes, {OWNED} this cluster's, {SERVERS} servers): full ListVolumes walk, 1000 per page, cloud API calls"
        ),
        measured: format!("{walk_calls}"),
        compared_to: format!("{pages}"),
        ratio: format!("{:.2}", walk_calls as f64 / pages as f64),
        target: "≤ 1.00 (one call per page)".into(),
        verdict: Verdict::of(walk_calls as usize <= pages),
        note: format!("{entries} entries in {pages} CSI pages, {}", time(walk)),
    });

    // A CreateVolume's name lookup among 10,000 volumes.
    let before = counters(cloud);
    client.create_volume(create_request("scale-new-volume")).await.expect("CreateVolume");
    let spent = delta(&before, &counters(cloud));
    let lookups: u64 = spent.iter().filter(|(route, _)| route.starts_with("GET ")).map(|(_, n)| n).sum();
    rows.push(Row {
        name: "Scale: one CreateVolume's name lookup and wait, cloud API GETs".into(),
        measured: format!("{lookups}"),
        compared_to: "2".into(),
        ratio: format!("{:.2}", lookups as f64 / 2.0),
        target: "≤ 1.00 (a name query and one look, whatever the project holds)".into(),
        verdict: Verdict::of(lookups <= 2),
        note: routes(&spent),
    });
    let rss = driver.rss();
    drop(driver);

    // EVS: a tag repair pass over the cluster's 5,000 disks, the first one adding every tag
    // and the next finding nothing to do.
    let evs_yaml = dir.join("scale-evs.yaml");
    std::fs::write(&evs_yaml, crate::cloud::clouds_yaml(cloud, true)).expect("write clouds.yaml");
    let args = [
        "controller",
        "--cloud-config",
        evs_yaml.to_str().unwrap(),
        "--cluster-id",
        CLUSTER,
        "--tag-repair-interval",
        // Longer than a first pass takes (5,000 tag calls): with a shorter period the next
        // pass starts the moment the first ends, and the two cannot be told apart by counting.
        "15s",
    ];
    let (owned, untagged) = owned_disks(cloud);
    let driver = Driver::spawn(dir, "scale-evs", &args);
    driver.ready().await;
    // After the start-up probe, which is no part of a pass.
    let before = counters(cloud);
    let Some(first) = repair_pass(cloud, &before).await else {
        rows.push(Row::skipped("Scale, EVS: a tag repair pass", "-", "no repair pass ran within 5 minutes"));
        return;
    };
    let second_start = counters(cloud);
    let Some(second) = repair_pass(cloud, &second_start).await else {
        rows.push(Row::skipped(
            "Scale, EVS: a second tag repair pass",
            "-",
            "no repair pass ran within 5 minutes",
        ));
        return;
    };
    let evs_rss = driver.rss();
    drop(driver);
    // A pass lists twice: the tag query for the disks carrying the owner tag, then the disks
    // carrying the owner metadata, each a page per 1,000 disks, and the walk ends at a page
    // that is not full. For the 5,000 written disks plus the few the API made that is 6 + 6 =
    // 12 calls (not 10: each listing needs the sixth, short page to see its end). The first pass
    // adds one tag call per owned disk without its tags.
    let listings = 2 * (owned / 1000 + 1);
    for (which, spent, target) in [
        ("first (tags all 5,000)", &first, untagged + listings),
        ("next (nothing to add)", &second, listings),
    ] {
        let total: u64 = spent.values().sum();
        rows.push(Row {
            name: format!("Scale, EVS: a tag repair pass, {which}: cloud API calls"),
            measured: format!("{total}"),
            compared_to: format!("{target}"),
            ratio: format!("{:.2}", total as f64 / target as f64),
            target: "≤ 1.00 (one call per disk repaired, plus a page per 1000 disks)".into(),
            verdict: Verdict::of(total <= target),
            note: routes(spent),
        });
    }
    rows.push(crate::report::memory_row(
        "Scale: controller RSS after the ListVolumes walk (Cinder) / the repair passes (EVS)",
        rss.max(evs_rss),
        64 << 20,
    ));
    rows.last_mut().unwrap().note = format!("Cinder {}, EVS {}", mib(rss), mib(evs_rss));
}

fn create_request(name: &str) -> pb::CreateVolumeRequest {
    pb::CreateVolumeRequest {
        name: name.into(),
        capacity_range: Some(pb::CapacityRange { required_bytes: 1 << 30, limit_bytes: 0 }),
        volume_capabilities: vec![crate::requests::mount_capability()],
        ..Default::default()
    }
}

/// Waits for one repair pass to run and settle; the calls it made.
async fn repair_pass(
    cloud: &EmulatorHandle,
    before: &BTreeMap<String, u64>,
) -> Option<BTreeMap<String, u64>> {
    let is_tag_query = |route: &String| route.contains("resource_instances");
    let deadline = Instant::now() + Duration::from_secs(300);
    // The pass starts with its tag query ...
    while !delta(before, &counters(cloud)).keys().any(is_tag_query) {
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ... and is over when the counters stand still for a while (the next is 3 s later).
    let mut last = counters(cloud);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = counters(cloud);
        if now == last {
            return Some(delta(before, &now));
        }
        last = now;
    }
}

/// Writes the volumes and servers into the emulator's world.
fn populate(cloud: &EmulatorHandle) {
    let demo = cloud.demo();
    cloud
        .cloud()
        .write(Family::Volume, |w| {
            let server = w.servers.values().find(|s| s.this_host).expect("this host's server").clone();
            for i in 0..SERVERS {
                let id = resource_id();
                let copy = cinder_evs_csi::emulator::model::Server {
                    id: id.clone(),
                    name: format!("scale-node-{i}"),
                    this_host: false,
                    ..server.clone()
                };
                w.servers.insert(id, copy);
            }
            let store = w.store_mut(&demo.project_id);
            let template = store.volumes.values().next().expect("a volume to copy").clone();
            for i in 0..VOLUMES {
                let id = resource_id();
                let mut volume = cinder_evs_csi::emulator::model::Volume {
                    id: id.clone(),
                    name: format!("scale-{i}"),
                    status: "available".into(),
                    attachments: Vec::new(),
                    pending: None,
                    metadata: BTreeMap::new(),
                    ..template.clone()
                };
                volume.extra.remove("tags");
                if i % 2 == 0 {
                    volume.metadata.insert(CLUSTER_KEY.into(), CLUSTER.into());
                }
                store.volumes.insert(id, volume);
            }
            Ok(())
        })
        .expect("populate the emulator");
}

/// The disks this cluster owns (by metadata), and how many of them lack the owner tag.
fn owned_disks(cloud: &EmulatorHandle) -> (u64, u64) {
    let project = cloud.demo().project_id;
    let tag_key = CLUSTER_KEY.replace('/', "_");
    cloud.cloud().read(|w| {
        let volumes =
            w.stores.get(&project).map(|s| s.volumes.values().collect::<Vec<_>>()).unwrap_or_default();
        let owned: Vec<_> = volumes
            .into_iter()
            .filter(|v| v.metadata.get(CLUSTER_KEY).is_some_and(|c| c == CLUSTER))
            .collect();
        let untagged = owned
            .iter()
            .filter(|v| {
                v.extra.get("tags").and_then(|t| t.get(&tag_key)).and_then(|t| t.as_str()) != Some(CLUSTER)
            })
            .count();
        (owned.len() as u64, untagged as u64)
    })
}

fn calls(cloud: &EmulatorHandle) -> u64 {
    cloud.cloud().counters().snapshot().values().sum()
}

fn counters(cloud: &EmulatorHandle) -> BTreeMap<String, u64> {
    cloud.cloud().counters().snapshot()
}

fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

fn routes(spent: &BTreeMap<String, u64>) -> String {
    spent.iter().map(|(route, n)| format!("{route}: {n}")).collect::<Vec<_>>().join(", ")
}
