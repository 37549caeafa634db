//! The Kubernetes manifests: `kubectl kustomize deploy` renders objects that are well formed,
//! pin their images, grant each sidecar what it documents it needs (and no wildcard), keep the
//! controller ready for failover and running as a non-root user without privilege, and the
//! node plugin privileged only where mounting needs it; and the Helm chart, rendered with
//! `helm template` (and `helm lint`), produces the same workloads by default, refuses values it
//! does not know, and passes every knob it documents to the pod it belongs to.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde::Deserialize;
use serde_yaml_ng::Value;

const CHART: &str = "charts/cinder-evs-csi";

/// Renders a kustomization with kubectl; `None` (after saying so) when kubectl is missing
/// outside CI.
fn render(dir: &str, test: &str) -> Option<Vec<Value>> {
    let root = env!("CARGO_MANIFEST_DIR");
    let output = match Command::new("kubectl").args(["kustomize", dir]).current_dir(root).output() {
        Ok(output) => output,
        Err(e) => {
            if std::env::var_os("CI").is_some() {
                panic!("kubectl is needed to render {dir} in CI: {e}");
            }
            eprintln!("SKIPPED {test}: kubectl not found ({e})");
            return None;
        }
    };
    assert!(output.status.success(), "kubectl kustomize {dir}: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    let objects: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|v| !v.is_null())
        .collect();
    assert!(!objects.is_empty(), "{dir} renders nothing");
    Some(objects)
}

fn s<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |v, key| &v[*key])
}

fn text(value: &Value) -> String {
    value.as_str().map(str::to_string).unwrap_or_default()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| text(&o["kind"]) == kind && text(&o["metadata"]["name"]) == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// (workload name, container name) → container, for Deployments and DaemonSets.
fn containers(objects: &[Value]) -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    for object in objects.iter().filter(|o| matches!(text(&o["kind"]).as_str(), "Deployment" | "DaemonSet")) {
        let workload = text(&object["metadata"]["name"]);
        for container in s(object, &["spec", "template", "spec", "containers"]).as_sequence().unwrap() {
            out.insert((workload.clone(), text(&container["name"])), container.clone());
        }
    }
    out
}

fn args(container: &Value) -> Vec<String> {
    container["args"].as_sequence().map(|a| a.iter().map(text).collect()).unwrap_or_default()
}

#[test]
fn every_rendered_object_has_api_version_kind_and_a_name() {
    for dir in ["deploy", "deploy/examples"] {
        let Some(objects) = render(dir, "every_rendered_object_has_api_version_kind_and_a_name") else {
            return;
        };
        for object in &objects {
            assert!(text(&object["apiVersion"]).contains('v'), "{dir}: no apiVersion in {object:?}");
            assert!(!text(&object["kind"]).is_empty(), "{dir}: no kind in {object:?}");
            assert!(!text(&object["metadata"]["name"]).is_empty(), "{dir}: no metadata.name in {object:?}");
        }
    }
}

#[test]
fn every_image_is_pinned_to_a_tag_other_than_latest() {
    let Some(objects) = render("deploy", "every_image_is_pinned_to_a_tag_other_than_latest") else { return };
    let all = containers(&objects);
    assert!(all.len() >= 9, "expected the driver and every sidecar, got {:?}", all.keys());
    for ((workload, name), container) in &all {
        let image = text(&container["image"]);
        let last = image.rsplit('/').next().unwrap();
        let tag = last.split_once(':').map(|(_, t)| t).unwrap_or("");
        assert!(!tag.is_empty() && tag != "latest", "{workload}/{name}: image {image:?} is not pinned");
    }
}

/// One permission: (apiGroup, resource, verbs).
type Need = (&'static str, &'static str, &'static [&'static str]);

/// What each sidecar documents it needs, by the role that grants it.
fn sidecar_needs() -> BTreeMap<&'static str, Vec<Need>> {
    const WATCH: &[&str] = &["get", "list", "watch"];
    BTreeMap::from([
        (
            "cinder-evs-csi-provisioner",
            vec![
                ("", "persistentvolumes", &["get", "list", "watch", "create", "delete"][..]),
                ("", "persistentvolumeclaims", &["get", "list", "watch", "update"][..]),
                ("", "events", &["create", "patch"][..]),
                ("", "nodes", WATCH),
                ("storage.k8s.io", "storageclasses", WATCH),
                ("storage.k8s.io", "csinodes", WATCH),
                ("storage.k8s.io", "volumeattachments", WATCH),
                ("storage.k8s.io", "volumeattributesclasses", WATCH),
                ("snapshot.storage.k8s.io", "volumesnapshots", &["get"][..]),
                ("snapshot.storage.k8s.io", "volumesnapshotcontents", &["get"][..]),
            ],
        ),
        (
            "cinder-evs-csi-attacher",
            vec![
                ("", "persistentvolumes", &["get", "list", "watch", "patch"][..]),
                ("storage.k8s.io", "csinodes", WATCH),
                ("storage.k8s.io", "volumeattachments", &["get", "list", "watch", "patch"][..]),
                ("storage.k8s.io", "volumeattachments/status", &["patch"][..]),
            ],
        ),
        (
            "cinder-evs-csi-resizer",
            vec![
                ("", "persistentvolumes", &["get", "list", "watch", "patch"][..]),
                ("", "persistentvolumeclaims", WATCH),
                ("", "persistentvolumeclaims/status", &["patch"][..]),
                ("", "pods", &["list", "watch"][..]),
                ("", "events", &["create", "patch"][..]),
                ("storage.k8s.io", "volumeattributesclasses", WATCH),
            ],
        ),
        (
            "cinder-evs-csi-snapshotter",
            vec![
                ("", "events", &["create", "patch"][..]),
                ("snapshot.storage.k8s.io", "volumesnapshotclasses", WATCH),
                (
                    "snapshot.storage.k8s.io",
                    "volumesnapshotcontents",
                    &["get", "list", "watch", "update", "patch"][..],
                ),
                ("snapshot.storage.k8s.io", "volumesnapshotcontents/status", &["update", "patch"][..]),
                // Group snapshots (behind the sidecar's CSIVolumeGroupSnapshot gate).
                ("snapshot.storage.k8s.io", "volumesnapshotcontents", &["create"][..]),
                ("groupsnapshot.storage.k8s.io", "volumegroupsnapshotclasses", WATCH),
                (
                    "groupsnapshot.storage.k8s.io",
                    "volumegroupsnapshotcontents",
                    &["get", "list", "watch", "update", "patch"][..],
                ),
                (
                    "groupsnapshot.storage.k8s.io",
                    "volumegroupsnapshotcontents/status",
                    &["update", "patch"][..],
                ),
            ],
        ),
        (
            "cinder-evs-csi-leader-election",
            vec![("coordination.k8s.io", "leases", &["get", "watch", "list", "create", "update"][..])],
        ),
        (
            "cinder-evs-csi-node",
            vec![("", "nodes", &["get"][..]), ("storage.k8s.io", "volumeattachments", &["list"][..])],
        ),
    ])
}

fn grants(role: &Value, group: &str, resource: &str, verb: &str) -> bool {
    role["rules"].as_sequence().into_iter().flatten().any(|rule| {
        let has = |key: &str, want: &str| {
            rule[key].as_sequence().into_iter().flatten().any(|v| v.as_str() == Some(want))
        };
        has("apiGroups", group) && has("resources", resource) && has("verbs", verb)
    })
}

#[test]
fn each_sidecar_role_grants_what_the_sidecar_needs_and_is_bound_to_its_pod() {
    let test = "each_sidecar_role_grants_what_the_sidecar_needs_and_is_bound_to_its_pod";
    let Some(objects) = render("deploy", test) else { return };
    for (role_name, needs) in sidecar_needs() {
        let role = objects
            .iter()
            .find(|o| {
                matches!(text(&o["kind"]).as_str(), "ClusterRole" | "Role")
                    && text(&o["metadata"]["name"]) == role_name
            })
            .unwrap_or_else(|| panic!("no role {role_name}"));
        for (group, resource, verbs) in needs {
            for verb in verbs {
                assert!(
                    grants(role, group, resource, verb),
                    "{role_name} lacks {verb} on {group}/{resource}"
                );
            }
        }
        let account = if role_name == "cinder-evs-csi-node" {
            "cinder-evs-csi-node"
        } else {
            "cinder-evs-csi-controller"
        };
        let bound = objects.iter().any(|o| {
            text(&o["kind"]).ends_with("Binding")
                && text(&o["roleRef"]["name"]) == role_name
                && o["subjects"].as_sequence().into_iter().flatten().any(|s| text(&s["name"]) == account)
        });
        assert!(bound, "{role_name} is not bound to {account}");
    }
}

#[test]
fn no_role_grants_a_wildcard() {
    let Some(objects) = render("deploy", "no_role_grants_a_wildcard") else { return };
    for role in objects.iter().filter(|o| text(&o["kind"]).ends_with("Role")) {
        for rule in role["rules"].as_sequence().into_iter().flatten() {
            for key in ["apiGroups", "resources", "verbs"] {
                let values: Vec<_> = rule[key].as_sequence().into_iter().flatten().map(text).collect();
                assert!(
                    !values.contains(&"*".to_string()),
                    "{} grants * in {key}",
                    text(&role["metadata"]["name"])
                );
            }
        }
    }
}

#[test]
fn the_controller_is_ready_for_failover() {
    let Some(objects) = render("deploy", "the_controller_is_ready_for_failover") else { return };
    let deployment = find(&objects, "Deployment", "cinder-evs-csi-controller");
    assert!(deployment["spec"]["replicas"].as_u64().unwrap() >= 2);
    for ((workload, name), container) in containers(&objects) {
        if workload == "cinder-evs-csi-controller" && name.starts_with("csi-") {
            assert!(
                args(&container).contains(&"--leader-election".to_string()),
                "{name} does not elect a leader"
            );
        }
    }
    let pdb = find(&objects, "PodDisruptionBudget", "cinder-evs-csi-controller");
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        s(deployment, &["spec", "selector", "matchLabels"]).clone()
    );
    let provisioner = &containers(&objects)[&("cinder-evs-csi-controller".into(), "csi-provisioner".into())];
    let provisioner_args = args(provisioner).join(" ");
    assert!(
        provisioner_args.contains("Topology=true") && provisioner_args.contains("--extra-create-metadata")
    );
    let resizer = &containers(&objects)[&("cinder-evs-csi-controller".into(), "csi-resizer".into())];
    assert!(args(resizer).join(" ").contains("VolumeAttributesClass=true"));
}

#[test]
fn only_the_node_driver_container_is_privileged_and_it_drains_before_stopping() {
    let test = "only_the_node_driver_container_is_privileged_and_it_drains_before_stopping";
    let Some(objects) = render("deploy", test) else { return };
    for ((workload, name), container) in containers(&objects) {
        let privileged = container["securityContext"]["privileged"].as_bool() == Some(true);
        let is_node_driver = workload == "cinder-evs-csi-node" && name == "cinder-evs-csi";
        assert_eq!(privileged, is_node_driver, "{workload}/{name}");
        for mount in container["volumeMounts"].as_sequence().into_iter().flatten() {
            if mount["mountPropagation"].as_str() == Some("Bidirectional") {
                assert!(is_node_driver, "{workload}/{name} has Bidirectional propagation");
            }
        }
        if is_node_driver {
            let kubelet = container["volumeMounts"]
                .as_sequence()
                .unwrap()
                .iter()
                .find(|m| text(&m["mountPath"]) == "/var/lib/kubelet")
                .expect("kubelet dir mounted");
            assert_eq!(text(&kubelet["mountPropagation"]), "Bidirectional");
            let pre_stop: Vec<String> = s(&container, &["lifecycle", "preStop", "exec", "command"])
                .as_sequence()
                .unwrap()
                .iter()
                .map(text)
                .collect();
            assert_eq!(pre_stop[1], "drain-wait");
        }
    }
}

#[test]
fn the_csidriver_declares_attach_pod_info_and_file_fs_group_policy() {
    let test = "the_csidriver_declares_attach_pod_info_and_file_fs_group_policy";
    let Some(objects) = render("deploy", test) else { return };
    let driver = find(&objects, "CSIDriver", "csi.cinder-evs.io");
    assert_eq!(driver["spec"]["attachRequired"].as_bool(), Some(true));
    assert_eq!(driver["spec"]["podInfoOnMount"].as_bool(), Some(true));
    assert_eq!(driver["spec"]["requiresRepublish"].as_bool(), Some(false));
    assert_eq!(text(&driver["spec"]["fsGroupPolicy"]), "File");
}

/// Why a rendered workload's pod could run as root, if it could.
fn root_allowed(workload: &Value) -> Vec<String> {
    let pod = s(workload, &["spec", "template", "spec"]);
    let mut why = Vec::new();
    let context = &pod["securityContext"];
    if context["runAsNonRoot"].as_bool() != Some(true) {
        why.push(format!("pod securityContext.runAsNonRoot is {:?}", context["runAsNonRoot"]));
    }
    match context["runAsUser"].as_u64() {
        Some(uid) if uid != 0 => {}
        other => why.push(format!("pod securityContext.runAsUser is {other:?}")),
    }
    for container in pod["containers"].as_sequence().into_iter().flatten() {
        let name = text(&container["name"]);
        let c = &container["securityContext"];
        if c["runAsUser"].as_u64() == Some(0) || c["runAsNonRoot"].as_bool() == Some(false) {
            why.push(format!("container {name} overrides the pod to run as root"));
        }
        if c["privileged"].as_bool() == Some(true) || c["allowPrivilegeEscalation"].as_bool() != Some(false) {
            why.push(format!("container {name} may gain privileges"));
        }
    }
    why
}

#[test]
fn the_controller_pod_runs_as_a_non_root_user_without_privilege() {
    let Some(objects) = render("deploy", "the_controller_pod_runs_as_a_non_root_user_without_privilege")
    else {
        return;
    };
    let controller = find(&objects, "Deployment", "cinder-evs-csi-controller");
    assert_eq!(root_allowed(controller), Vec::<String>::new());
}

// ---- The Helm chart, rendered by helm itself. ----

/// Runs helm with `args` in the checkout; `None` (after saying so) when helm is missing
/// outside CI, a panic in CI, where .ci/run installs it.
fn helm(args: &[&str], test: &str) -> Option<std::process::Output> {
    match Command::new("helm").args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output() {
        Ok(output) => Some(output),
        Err(e) => {
            if std::env::var_os("CI").is_some() {
                panic!("helm is needed to render the chart in CI (.ci/run installs it): {e}");
            }
            eprintln!("SKIPPED {test}: helm not found ({e})");
            None
        }
    }
}

fn yaml_documents(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// `helm template` of the chart with extra arguments (`--set`, `-f`, `--api-versions`).
fn chart(extra: &[&str], test: &str) -> Option<Vec<Value>> {
    let mut args = vec!["template", "cinder-evs-csi", CHART, "--namespace", "kube-system"];
    args.extend_from_slice(extra);
    let output = helm(&args, test)?;
    assert!(output.status.success(), "helm template {extra:?}: {}", String::from_utf8_lossy(&output.stderr));
    Some(yaml_documents(&String::from_utf8(output.stdout).unwrap()))
}

/// `helm template` that must fail; returns its error text.
fn chart_refuses(extra: &[&str], test: &str) -> Option<String> {
    let mut args = vec!["template", "cinder-evs-csi", CHART];
    args.extend_from_slice(extra);
    let output = helm(&args, test)?;
    assert!(!output.status.success(), "helm template {extra:?} was accepted");
    Some(String::from_utf8_lossy(&output.stderr).into_owned())
}

fn pod_spec<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    s(find(objects, kind, name), &["spec", "template", "spec"])
}

fn container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    pod["containers"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|c| text(&c["name"]) == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

fn kinds(objects: &[Value]) -> BTreeSet<String> {
    objects.iter().map(|o| text(&o["kind"])).collect()
}

const SNAPSHOT_APIS: [&str; 6] = [
    "--api-versions",
    "snapshot.storage.k8s.io/v1/VolumeSnapshotClass",
    "--api-versions",
    "groupsnapshot.storage.k8s.io/v1beta2/VolumeGroupSnapshotClass",
    "--api-versions",
    "storage.k8s.io/v1/VolumeAttributesClass",
];

#[test]
fn the_chart_passes_helm_lint_with_its_defaults_and_its_example_values() {
    let test = "the_chart_passes_helm_lint_with_its_defaults_and_its_example_values";
    for extra in [&[][..], &["-f", "charts/cinder-evs-csi/examples/sandbox-values.yaml"][..]] {
        let mut args = vec!["lint", "--strict", CHART];
        args.extend_from_slice(extra);
        let Some(output) = helm(&args, test) else { return };
        assert!(output.status.success(), "helm lint {extra:?}: {}", String::from_utf8_lossy(&output.stdout));
    }
}

#[test]
fn the_chart_and_the_kustomize_manifests_run_the_same_containers_with_the_same_arguments() {
    let test = "the_chart_and_the_kustomize_manifests_run_the_same_containers_with_the_same_arguments";
    let Some(deployed) = render("deploy", test) else { return };
    // With every optional API served, as on a cluster with the snapshot CRDs.
    let Some(charted) = chart(&SNAPSHOT_APIS[..2], test) else { return };
    let (deployed, charted) = (containers(&deployed), containers(&charted));
    assert_eq!(charted.keys().collect::<Vec<_>>(), deployed.keys().collect::<Vec<_>>());
    for (key, ours) in &charted {
        let theirs = &deployed[key];
        assert_eq!(text(&ours["image"]), text(&theirs["image"]), "{key:?}");
        let flag = |a: &String| a.split('=').next().unwrap().to_string();
        let (ours, theirs) = (args(ours), args(theirs));
        assert_eq!(
            ours.iter().map(flag).collect::<Vec<_>>(),
            theirs.iter().map(flag).collect::<Vec<_>>(),
            "{key:?}"
        );
    }
}

#[test]
fn the_chart_refuses_a_value_it_does_not_know_instead_of_dropping_it() {
    let test = "the_chart_refuses_a_value_it_does_not_know_instead_of_dropping_it";
    for typo in [
        "node.nodeSelectr.disk=ssd",
        "imagePullSecret[0].name=x",
        "sidecars.provisioner.timout=1m",
        "storageClass.enabled=true",
    ] {
        let Some(error) = chart_refuses(&["--set", typo], test) else { return };
        assert!(error.contains("additional properties"), "{typo}: {error}");
    }
    // Values of the wrong shape too.
    for bad in ["controller.replicas=0", "node.drainTimeout=5 minutes", "sidecars.attacher.timeout=soon"] {
        let Some(error) = chart_refuses(&["--set", bad], test) else { return };
        assert!(error.contains("schema"), "{bad}: {error}");
    }
}

#[test]
fn every_object_of_the_values_schema_refuses_additional_properties() {
    fn walk(value: &serde_json::Value, path: &str, open: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if map.contains_key("properties")
                    && map.get("additionalProperties") != Some(&serde_json::Value::Bool(false))
                {
                    open.push(path.to_string());
                }
                for (key, child) in map {
                    walk(child, &format!("{path}/{key}"), open);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, path, open)),
            _ => {}
        }
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(CHART).join("values.schema.json");
    let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut open = Vec::new();
    walk(&schema, "", &mut open);
    assert_eq!(open, Vec::<String>::new(), "objects of the schema that accept unknown keys");
}

#[test]
fn the_chart_places_each_pod_where_its_values_say() {
    let test = "the_chart_places_each_pod_where_its_values_say";
    let Some(objects) = chart(
        &[
            "--set",
            "controller.nodeSelector.pool=system",
            "--set",
            "node.nodeSelector.disk=ssd",
            "--set",
            "node.tolerations[0].key=gpu",
            "--set",
            "node.tolerations[0].operator=Exists",
            "--set",
            "controller.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=zone",
            "--set",
            "controller.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator=Exists",
            "--set",
            "node.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key=csi",
            "--set",
            "node.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator=Exists",
            "--set",
            "imagePullSecrets[0].name=registry",
        ],
        test,
    ) else {
        return;
    };
    let controller = pod_spec(&objects, "Deployment", "cinder-evs-csi-controller");
    let node = pod_spec(&objects, "DaemonSet", "cinder-evs-csi-node");
    assert_eq!(text(&controller["nodeSelector"]["pool"]), "system");
    assert_eq!(text(&node["nodeSelector"]["disk"]), "ssd");
    assert_eq!(text(&node["nodeSelector"]["kubernetes.io/os"]), "linux", "the node plugin left Linux");
    assert_eq!(text(&node["tolerations"][0]["key"]), "gpu");
    let term = |pod: &Value| {
        text(
            &pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
                [0]["matchExpressions"][0]["key"],
        )
    };
    assert_eq!(term(controller), "zone");
    assert_eq!(term(node), "csi");
    for pod in [controller, node] {
        assert_eq!(text(&pod["imagePullSecrets"][0]["name"]), "registry");
    }
}

#[test]
fn every_container_of_the_chart_takes_its_extra_args_env_and_mounts() {
    let test = "every_container_of_the_chart_takes_its_extra_args_env_and_mounts";
    // (values path, workload kind, container)
    let targets = [
        ("controller", "Deployment", "cinder-evs-csi"),
        ("node", "DaemonSet", "cinder-evs-csi"),
        ("sidecars.provisioner", "Deployment", "csi-provisioner"),
        ("sidecars.attacher", "Deployment", "csi-attacher"),
        ("sidecars.resizer", "Deployment", "csi-resizer"),
        ("sidecars.snapshotter", "Deployment", "csi-snapshotter"),
        ("sidecars.livenessProbe", "Deployment", "liveness-probe"),
        ("sidecars.livenessProbe", "DaemonSet", "liveness-probe"),
        ("sidecars.nodeDriverRegistrar", "DaemonSet", "node-driver-registrar"),
    ];
    let mut sets = vec![
        "controller.extraVolumes[0].name=extra".to_string(),
        "controller.extraVolumes[0].emptyDir.medium=Memory".to_string(),
        "node.extraVolumes[0].name=extra".to_string(),
        "node.extraVolumes[0].emptyDir.medium=Memory".to_string(),
    ];
    for (path, _, _) in targets {
        sets.extend([
            format!("{path}.extraArgs[0]=--marker-{path}"),
            format!("{path}.env[0].name=MARKER"),
            format!("{path}.env[0].value={path}"),
            format!("{path}.envFrom[0].secretRef.name=from-{path}"),
            format!("{path}.extraVolumeMounts[0].name=extra"),
            format!("{path}.extraVolumeMounts[0].mountPath=/extra"),
            format!("{path}.resources.limits.memory=77Mi"),
        ]);
    }
    let sets: Vec<&str> = sets.iter().flat_map(|s| ["--set", s.as_str()]).collect();
    let Some(objects) = chart(&sets, test) else { return };
    for (path, kind, name) in targets {
        let workload = if kind == "Deployment" { "cinder-evs-csi-controller" } else { "cinder-evs-csi-node" };
        let pod = pod_spec(&objects, kind, workload);
        let c = container(pod, name);
        assert!(args(c).contains(&format!("--marker-{path}")), "{kind}/{name}: {:?}", args(c));
        let env = c["env"].as_sequence().unwrap_or_else(|| panic!("{kind}/{name} has no env"));
        assert!(
            env.iter().any(|e| text(&e["name"]) == "MARKER" && text(&e["value"]) == path),
            "{kind}/{name}"
        );
        assert_eq!(text(&c["envFrom"][0]["secretRef"]["name"]), format!("from-{path}"), "{kind}/{name}");
        let mounts = c["volumeMounts"].as_sequence().unwrap();
        assert!(mounts.iter().any(|m| text(&m["mountPath"]) == "/extra"), "{kind}/{name}");
        assert_eq!(text(&c["resources"]["limits"]["memory"]), "77Mi", "{kind}/{name}");
        assert!(pod["volumes"].as_sequence().unwrap().iter().any(|v| text(&v["name"]) == "extra"));
    }
}

#[test]
fn the_chart_passes_sidecar_tuning_only_when_set() {
    let test = "the_chart_passes_sidecar_tuning_only_when_set";
    let Some(defaults) = chart(&[], test) else { return };
    let provisioner =
        args(container(pod_spec(&defaults, "Deployment", "cinder-evs-csi-controller"), "csi-provisioner"));
    assert!(
        !provisioner.iter().any(|a| a.starts_with("--kube-api") || a.starts_with("--worker-threads")),
        "{provisioner:?}"
    );
    let Some(tuned) = chart(
        &[
            "--set",
            "sidecars.provisioner.kubeApiQps=20",
            "--set",
            "sidecars.provisioner.kubeApiBurst=40",
            "--set",
            "sidecars.provisioner.workerThreads=25",
            "--set",
            "sidecars.provisioner.timeout=1m30s",
            "--set",
            "sidecars.attacher.leaderElection.leaseDuration=30s",
            "--set",
            "sidecars.resizer.leaderElection.renewDeadline=20s",
            "--set",
            "sidecars.snapshotter.leaderElection.retryPeriod=5s",
        ],
        test,
    ) else {
        return;
    };
    let pod = pod_spec(&tuned, "Deployment", "cinder-evs-csi-controller");
    let has = |name: &str, arg: &str| args(container(pod, name)).contains(&arg.to_string());
    assert!(has("csi-provisioner", "--kube-api-qps=20"));
    assert!(has("csi-provisioner", "--kube-api-burst=40"));
    assert!(has("csi-provisioner", "--worker-threads=25"));
    assert!(has("csi-provisioner", "--timeout=1m30s"));
    assert!(has("csi-attacher", "--leader-election-lease-duration=30s"));
    assert!(has("csi-resizer", "--leader-election-renew-deadline=20s"));
    assert!(has("csi-snapshotter", "--leader-election-retry-period=5s"));
}

#[test]
fn the_chart_runs_the_controller_pod_as_a_non_root_user_and_the_node_plugin_privileged() {
    let test = "the_chart_runs_the_controller_pod_as_a_non_root_user_and_the_node_plugin_privileged";
    let Some(objects) = chart(&[], test) else { return };
    assert_eq!(root_allowed(find(&objects, "Deployment", "cinder-evs-csi-controller")), Vec::<String>::new());
    // The image's default user is 65532; the node plugin must override it to format and mount.
    let node = pod_spec(&objects, "DaemonSet", "cinder-evs-csi-node");
    let driver = &container(node, "cinder-evs-csi")["securityContext"];
    assert_eq!(driver["privileged"].as_bool(), Some(true));
    assert_eq!(driver["runAsUser"].as_u64(), Some(0));
    for sidecar in ["node-driver-registrar", "liveness-probe"] {
        let context = &container(node, sidecar)["securityContext"];
        assert_ne!(context["privileged"].as_bool(), Some(true), "{sidecar}");
        assert_eq!(context["allowPrivilegeEscalation"].as_bool(), Some(false), "{sidecar}");
    }
}

#[test]
fn the_node_plugin_has_a_writable_temporary_directory_for_the_config_drive() {
    let test = "the_node_plugin_has_a_writable_temporary_directory_for_the_config_drive";
    let (Some(charted), Some(deployed)) = (chart(&[], test), render("deploy", test)) else { return };
    for objects in [charted, deployed] {
        node_tmpdir_is_a_private_writable_volume(&objects);
    }
}

#[test]
fn the_node_plugin_overrides_the_image_user_to_run_as_root_and_the_controller_does_not() {
    let test = "the_node_plugin_overrides_the_image_user_to_run_as_root_and_the_controller_does_not";
    let (Some(charted), Some(deployed)) = (chart(&[], test), render("deploy", test)) else { return };
    for objects in [charted, deployed] {
        let node = pod_spec(&objects, "DaemonSet", "cinder-evs-csi-node");
        assert_eq!(container(node, "cinder-evs-csi")["securityContext"]["runAsUser"].as_u64(), Some(0));
        assert_eq!(
            root_allowed(find(&objects, "Deployment", "cinder-evs-csi-controller")),
            Vec::<String>::new()
        );
    }
}

/// The config drive is mounted under TMPDIR: it must be set, and backed by the pod's own
/// writable emptyDir, since the root filesystem is read-only.
fn node_tmpdir_is_a_private_writable_volume(objects: &[Value]) {
    let pod = pod_spec(objects, "DaemonSet", "cinder-evs-csi-node");
    let driver = container(pod, "cinder-evs-csi");
    assert_eq!(driver["securityContext"]["readOnlyRootFilesystem"].as_bool(), Some(true));
    let tmpdir = driver["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| text(&e["name"]) == "TMPDIR")
        .map(|e| text(&e["value"]))
        .expect("TMPDIR is set, so the config drive's mount point is known");
    let mount = driver["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| text(&m["mountPath"]) == tmpdir)
        .unwrap_or_else(|| panic!("nothing is mounted at TMPDIR {tmpdir}"));
    assert_ne!(mount["readOnly"].as_bool(), Some(true));
    let volume = pod["volumes"].as_sequence().unwrap().iter().find(|v| v["name"] == mount["name"]).unwrap();
    assert!(volume["emptyDir"].is_mapping(), "TMPDIR is not a pod-private emptyDir: {volume:?}");
}

#[test]
fn the_chart_creates_classes_only_for_apis_the_cluster_serves() {
    let test = "the_chart_creates_classes_only_for_apis_the_cluster_serves";
    let example = ["-f", "charts/cinder-evs-csi/examples/sandbox-values.yaml"];
    let Some(bare) = chart(&example, test) else { return };
    let found = kinds(&bare);
    assert!(found.contains("StorageClass"));
    for absent in ["VolumeSnapshotClass", "VolumeGroupSnapshotClass", "VolumeAttributesClass"] {
        assert!(!found.contains(absent), "{absent} created on a cluster without its API");
    }
    let controller = pod_spec(&bare, "Deployment", "cinder-evs-csi-controller");
    let snapshotter = args(container(controller, "csi-snapshotter"));
    assert!(!snapshotter.iter().any(|a| a.contains("CSIVolumeGroupSnapshot")), "{snapshotter:?}");
    assert!(
        args(container(controller, "csi-resizer"))
            .contains(&"--feature-gates=VolumeAttributesClass=false".into())
    );

    let mut all = example.to_vec();
    all.extend_from_slice(&SNAPSHOT_APIS);
    let Some(full) = chart(&all, test) else { return };
    let found = kinds(&full);
    for present in
        ["StorageClass", "VolumeSnapshotClass", "VolumeGroupSnapshotClass", "VolumeAttributesClass"]
    {
        assert!(found.contains(present), "{present} missing with its API served");
    }
    let controller = pod_spec(&full, "Deployment", "cinder-evs-csi-controller");
    assert!(
        args(container(controller, "csi-snapshotter"))
            .contains(&"--feature-gates=CSIVolumeGroupSnapshot=true".into())
    );
    assert!(
        args(container(controller, "csi-resizer"))
            .contains(&"--feature-gates=VolumeAttributesClass=true".into())
    );
    assert!(
        args(container(controller, "csi-provisioner"))
            .contains(&"--feature-gates=Topology=true,VolumeAttributesClass=true".into())
    );
}

#[test]
fn the_chart_scrapes_the_controller_the_node_and_the_sidecars_when_asked() {
    let test = "the_chart_scrapes_the_controller_the_node_and_the_sidecars_when_asked";
    let Some(objects) = chart(
        &[
            "--set",
            "metrics.serviceMonitor.enabled=true",
            "--set",
            "metrics.podMonitor.enabled=true",
            "--set",
            "metrics.sidecars.enabled=true",
        ],
        test,
    ) else {
        return;
    };
    let controller = pod_spec(&objects, "Deployment", "cinder-evs-csi-controller");
    let node = pod_spec(&objects, "DaemonSet", "cinder-evs-csi-node");
    let port_names = |c: &Value| -> BTreeSet<String> {
        c["ports"].as_sequence().into_iter().flatten().map(|p| text(&p["name"])).collect()
    };
    let scraped: BTreeSet<String> =
        find(&objects, "ServiceMonitor", "cinder-evs-csi-controller")["spec"]["endpoints"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|e| text(&e["port"]))
            .collect();
    for sidecar in ["csi-provisioner", "csi-attacher", "csi-resizer", "csi-snapshotter"] {
        let c = container(controller, sidecar);
        assert!(args(c).iter().any(|a| a.starts_with("--http-endpoint=")), "{sidecar} serves no metrics");
        let ports = port_names(c);
        assert!(ports.iter().any(|p| scraped.contains(p)), "{sidecar}'s port {ports:?} is not scraped");
    }
    assert!(scraped.contains("metrics"));
    let service = find(&objects, "Service", "cinder-evs-csi-controller-metrics");
    let service_ports: BTreeSet<String> =
        service["spec"]["ports"].as_sequence().unwrap().iter().map(|p| text(&p["name"])).collect();
    assert!(scraped.is_subset(&service_ports), "{scraped:?} vs {service_ports:?}");
    let node_scraped: BTreeSet<String> =
        find(&objects, "PodMonitor", "cinder-evs-csi-node")["spec"]["podMetricsEndpoints"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|e| text(&e["port"]))
            .collect();
    let node_ports: BTreeSet<String> = ["cinder-evs-csi", "node-driver-registrar"]
        .into_iter()
        .flat_map(|c| port_names(container(node, c)))
        .collect();
    assert!(node_scraped.contains("metrics"));
    assert!(node_scraped.is_subset(&node_ports), "{node_scraped:?} vs {node_ports:?}");
}

#[test]
fn helm_test_asks_the_controller_liveness_probe_which_calls_the_driver_probe() {
    let test = "helm_test_asks_the_controller_liveness_probe_which_calls_the_driver_probe";
    let Some(objects) = chart(&[], test) else { return };
    let pod = find(&objects, "Pod", "cinder-evs-csi-probe-test");
    assert_eq!(text(&pod["metadata"]["annotations"]["helm.sh/hook"]), "test");
    let command: Vec<String> =
        pod["spec"]["containers"][0]["command"].as_sequence().unwrap().iter().map(text).collect();
    let url = command.last().unwrap();
    let service = find(&objects, "Service", "cinder-evs-csi-controller-metrics");
    let healthz = service["spec"]["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|p| text(&p["name"]) == "healthz")
        .unwrap();
    assert_eq!(
        url,
        &format!(
            "http://cinder-evs-csi-controller-metrics.kube-system.svc:{}/healthz",
            healthz["port"].as_u64().unwrap()
        )
    );
    // The Service's healthz port reaches the liveness-probe sidecar, whose /healthz calls Probe.
    let controller = pod_spec(&objects, "Deployment", "cinder-evs-csi-controller");
    let probe = container(controller, "liveness-probe");
    let endpoint = args(probe).into_iter().find(|a| a.starts_with("--http-endpoint=")).unwrap();
    assert!(endpoint.ends_with(&format!(":{}", healthz["port"].as_u64().unwrap())), "{endpoint}");
}

#[test]
fn the_example_classes_name_volume_types_the_emulator_has() {
    let test = "the_example_classes_name_volume_types_the_emulator_has";
    // The emulator's own bootstrap decides which types exist.
    let dir = tempfile::tempdir().unwrap();
    let mut world = cinder_evs_emulator::store::World::default();
    cinder_evs_emulator::bootstrap::apply(
        &mut world,
        &cinder_evs_emulator::EmulatorConfig::in_dir(dir.path()),
    )
    .unwrap();
    let types: Vec<String> = world.volume_types.values().map(|t| t.name.clone()).collect();
    let mut all = vec!["-f", "charts/cinder-evs-csi/examples/sandbox-values.yaml"];
    all.extend_from_slice(&SNAPSHOT_APIS);
    let Some(mut objects) = chart(&all, test) else { return };
    if let Some(examples) = render("deploy/examples", test) {
        objects.extend(examples);
    }
    let mut checked = 0;
    for object in objects
        .iter()
        .filter(|o| matches!(text(&o["kind"]).as_str(), "StorageClass" | "VolumeAttributesClass"))
    {
        let volume_type = text(&object["parameters"]["type"]);
        assert!(
            types.contains(&volume_type),
            "{:?} names type {volume_type:?}, not one of {types:?}",
            object["metadata"]["name"]
        );
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} classes checked");
}
