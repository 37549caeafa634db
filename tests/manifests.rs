//! The Kubernetes manifests: `kubectl kustomize deploy` renders objects that are well formed,
//! pin their images, grant each sidecar what it documents it needs (and no wildcard), keep the
//! controller ready for failover and running as a non-root user without privilege, and the
//! node plugin privileged only where mounting needs it;
//! and the Helm chart (which CI cannot render: no helm) uses the same images and arguments,
//! compared textually with its values.yaml and templates.

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

/// Every `repository` + `tag` pair in the chart's values.
fn chart_images() -> BTreeSet<String> {
    fn walk(value: &Value, out: &mut BTreeSet<String>) {
        match value {
            Value::Mapping(map) => {
                if let (Some(repo), Some(tag)) = (map.get("repository"), map.get("tag")) {
                    out.insert(format!("{}:{}", text(repo), text(tag)));
                }
                map.values().for_each(|v| walk(v, out));
            }
            Value::Sequence(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(CHART).join("values.yaml");
    let values: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = BTreeSet::new();
    walk(&values, &mut out);
    out
}

#[test]
fn the_chart_and_the_kustomize_manifests_use_the_same_images() {
    let test = "the_chart_and_the_kustomize_manifests_use_the_same_images";
    let Some(objects) = render("deploy", test) else { return };
    let deployed: BTreeSet<String> = containers(&objects).values().map(|c| text(&c["image"])).collect();
    assert_eq!(chart_images(), deployed);
}

/// (workload, container) → the `args` items of a chart template, read as text.
fn template_args(file: &str, workload: &str) -> BTreeMap<(String, String), Vec<String>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(CHART).join("templates").join(file);
    let source = std::fs::read_to_string(path).unwrap();
    let indent = |line: &str| line.len() - line.trim_start().len();
    let mut out = BTreeMap::new();
    let mut container = None;
    let mut collecting: Option<usize> = None;
    for line in source.lines() {
        if let Some(args_indent) = collecting {
            let trimmed = line.trim_start();
            if indent(line) > args_indent && trimmed.starts_with("- ") {
                let item = trimmed[2..].to_string();
                out.entry((workload.to_string(), container.clone().unwrap()))
                    .or_insert_with(Vec::new)
                    .push(item);
                continue;
            }
            collecting = None;
        }
        if indent(line) == 8 && line.trim_start().starts_with("- name: ") {
            container = Some(line.trim_start()["- name: ".len()..].trim().to_string());
        } else if line.trim() == "args:" && container.is_some() {
            collecting = Some(indent(line));
        }
    }
    out
}

#[test]
fn the_chart_and_the_kustomize_manifests_pass_the_same_arguments() {
    let test = "the_chart_and_the_kustomize_manifests_pass_the_same_arguments";
    let Some(objects) = render("deploy", test) else { return };
    let mut chart = template_args("controller.yaml", "cinder-evs-csi-controller");
    chart.extend(template_args("node.yaml", "cinder-evs-csi-node"));
    let deployed = containers(&objects);
    assert_eq!(chart.keys().collect::<Vec<_>>(), deployed.keys().collect::<Vec<_>>());
    for (key, chart_args) in &chart {
        let deployed_args = args(&deployed[key]);
        assert_eq!(chart_args.len(), deployed_args.len(), "{key:?}: {chart_args:?} vs {deployed_args:?}");
        for (ours, theirs) in chart_args.iter().zip(&deployed_args) {
            if ours.contains("{{") {
                // A templated value: the flag must be the same.
                let flag = |a: &str| a.split('=').next().unwrap().to_string();
                assert_eq!(flag(ours), flag(theirs), "{key:?}");
            } else {
                assert_eq!(ours, theirs, "{key:?}");
            }
        }
    }
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

/// The `key: value` lines of the block opened by `header` at exactly `indent` spaces in a
/// chart template, with `{{ .Values.a.b }}` values looked up in values.yaml.
fn template_block(template: &str, header: &str, indent: usize) -> BTreeMap<String, String> {
    let values: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(CHART).join("values.yaml"))
            .unwrap(),
    )
    .unwrap();
    let opening = format!("{}{header}", " ".repeat(indent));
    let mut lines = template.lines().skip_while(|l| l.trim_end() != opening).skip(1);
    let mut block = BTreeMap::new();
    for line in lines.by_ref() {
        let depth = line.len() - line.trim_start().len();
        if line.trim().is_empty() {
            continue;
        }
        if depth <= indent {
            break;
        }
        if let Some((key, value)) = line.trim().split_once(':')
            && depth == indent + 2
        {
            let value = value.trim();
            let value = match value.strip_prefix("{{ .Values.").and_then(|v| v.strip_suffix(" }}")) {
                Some(path) => {
                    let found = path.split('.').fold(&values, |v, k| &v[k]);
                    serde_yaml_ng::to_string(found).unwrap().trim().to_string()
                }
                None => value.to_string(),
            };
            block.insert(key.to_string(), value);
        }
    }
    block
}

#[test]
fn the_chart_runs_the_controller_pod_as_a_non_root_user_without_privilege() {
    let template = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(CHART).join("templates/controller.yaml"),
    )
    .unwrap();
    let pod = template_block(&template, "securityContext:", 6);
    assert_eq!(pod.get("runAsNonRoot").map(String::as_str), Some("true"), "pod securityContext: {pod:?}");
    let uid: u64 = pod.get("runAsUser").and_then(|u| u.parse().ok()).expect("a numeric runAsUser");
    assert_ne!(uid, 0, "the controller runs as root");
    for line in template.lines().map(str::trim) {
        assert!(
            !matches!(
                line,
                "runAsUser: 0"
                    | "runAsNonRoot: false"
                    | "privileged: true"
                    | "allowPrivilegeEscalation: true"
            ),
            "a controller container is allowed root or privilege: {line}"
        );
    }
    // Every container (one `image:` each) takes the shared container context, which forbids
    // escalation and drops every capability.
    let helpers = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(CHART).join("templates/_helpers.tpl"),
    )
    .unwrap();
    let shared =
        helpers.split("define \"cinder-evs-csi.sidecarSecurity\"").nth(1).expect("the shared context");
    let shared = &shared[..shared.find("{{- end }}").unwrap()];
    assert!(
        shared.contains("allowPrivilegeEscalation: false") && shared.contains("drop: [\"ALL\"]"),
        "{shared}"
    );
    let images = template.lines().filter(|l| l.trim_start().starts_with("image:")).count();
    let with_context =
        template.matches("securityContext: {{- include \"cinder-evs-csi.sidecarSecurity\"").count();
    assert_eq!(with_context, images, "a controller container lacks the shared security context");
}
