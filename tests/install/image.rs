//! The container image: every stage of the Dockerfile is replayed outside docker exactly as
//! written (the same COPY set into a fresh directory per stage, the same RUN commands with the
//! same ARG/ENV), so a COPY that misses a file the build needs fails here, not in a user's
//! `docker build`. The runtime tree is then checked from the inside with chroot: every tool the
//! node runs starts with only the libraries the image carries, and the driver reports the commit
//! passed as a build argument and, as the image's default user, serves CreateVolume and
//! DeleteVolume against an emulator outside the tree; the image has no emulator or sandbox
//! mode (it is built without the `emulator` feature). Where a container engine answers, the image is also built and run for real.
//!
//! Two departures from a real build, both on purpose and both visible below:
//! - `apt-get` commands are not run (they would change the host); the packages they name must be
//!   installed on the host instead (.ci/run installs them), which is checked with dpkg.
//! - the build stage's `target` directory is a link to `target/image-replay` so that later runs
//!   are incremental, and, unless `IMAGE_REPLAY_RELEASE=1`, the release profile is made cheap with
//!   `CARGO_PROFILE_RELEASE_*` variables (no LTO, opt-level 0). The commands, their `--locked`,
//!   and the files they see stay as written; `--offline` is added through `CARGO_NET_OFFLINE`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const COMMIT: &str = "feedc0ffee12";

/// One instruction of a Dockerfile, continuation lines joined.
#[derive(Debug, Clone)]
struct Instruction {
    keyword: String,
    args: String,
}

/// One `FROM` stage.
#[derive(Debug, Default)]
struct Stage {
    base: String,
    name: String,
    instructions: Vec<Instruction>,
}

fn parse(dockerfile: &str) -> Vec<Stage> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(line);
            logical.push(std::mem::take(&mut current));
        }
    }
    assert!(current.is_empty(), "the Dockerfile ends inside a continued line");
    let mut stages: Vec<Stage> = Vec::new();
    for line in logical {
        let (keyword, args) = line.trim().split_once(char::is_whitespace).unwrap_or((line.trim(), ""));
        let keyword = keyword.to_ascii_uppercase();
        let args = args.trim().to_string();
        if keyword == "FROM" {
            let words: Vec<&str> = args.split_whitespace().collect();
            let name = match words.as_slice() {
                [base, as_, name] if as_.eq_ignore_ascii_case("as") => {
                    let _ = base;
                    name.to_string()
                }
                [_] => format!("stage{}", stages.len()),
                _ => panic!("unparsed FROM {args}"),
            };
            stages.push(Stage { base: words[0].to_string(), name, instructions: Vec::new() });
        } else {
            let stage = stages.last_mut().unwrap_or_else(|| panic!("{keyword} before FROM"));
            stage.instructions.push(Instruction { keyword, args });
        }
    }
    stages
}

fn dockerfile() -> Vec<Stage> {
    parse(&std::fs::read_to_string(Path::new(ROOT).join("Dockerfile")).unwrap())
}

/// Expands `${NAME}` and `$NAME` from the stage's ARG/ENV values.
fn expand(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = text.to_string();
    for (name, value) in vars {
        out = out.replace(&format!("${{{name}}}"), value).replace(&format!("${name}"), value);
    }
    out
}

/// `KEY=value KEY2=value` (ENV, LABEL) or `KEY=value` / `KEY` (ARG).
fn assignments(args: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = args.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=').unwrap_or((rest, ""));
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').expect("closing quote");
            (&quoted[..end], &quoted[end + 1..])
        } else {
            after.split_once(char::is_whitespace).unwrap_or((after, ""))
        };
        out.push((key.trim().to_string(), value.to_string()));
        rest = tail.trim();
    }
    out
}

/// Copies a file or a directory tree (dereferencing nothing outside it).
fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::copy(from, to)
            .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", from.display(), to.display()));
    }
}

/// Where a path inside a stage lives in the replay: absolute paths under the stage's root,
/// relative ones under its working directory.
fn in_stage(root: &Path, workdir: &str, path: &str) -> PathBuf {
    match path.strip_prefix('/') {
        Some(abs) => root.join(abs),
        None => root.join(workdir.trim_start_matches('/')).join(path),
    }
}

/// The packages an `apt-get install` line names.
fn apt_packages(command: &str) -> Vec<String> {
    let Some((_, after)) = command.split_once("apt-get install") else { return Vec::new() };
    after
        .split("&&")
        .next()
        .unwrap()
        .split_whitespace()
        .filter(|w| !w.starts_with('-'))
        .map(str::to_string)
        .collect()
}

fn host_package_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

/// Replays every stage but the last (the FROM scratch runtime, which runs nothing) and returns
/// the replay's root directory (one subdirectory per stage).
fn replay(stages: &[Stage], build_args: &BTreeMap<&str, &str>) -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("image-replay-").tempdir().unwrap();
    let shared_target = Path::new(ROOT).join("target/image-replay");
    std::fs::create_dir_all(&shared_target).unwrap();
    for stage in stages.iter().filter(|s| s.base != "scratch") {
        let root = dir.path().join(&stage.name);
        std::fs::create_dir_all(&root).unwrap();
        let mut workdir = "/".to_string();
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        for instruction in &stage.instructions {
            let args = expand(&instruction.args, &vars);
            match instruction.keyword.as_str() {
                "WORKDIR" => {
                    workdir = args.clone();
                    let path = in_stage(&root, "/", &workdir);
                    std::fs::create_dir_all(&path).unwrap();
                    if stage.name == "build" && !path.join("target").exists() {
                        std::os::unix::fs::symlink(&shared_target, path.join("target")).unwrap();
                    }
                }
                "ARG" => {
                    for (key, default) in assignments(&args) {
                        let value = build_args.get(key.as_str()).map_or(default, |v| v.to_string());
                        vars.insert(key, value);
                    }
                }
                "ENV" => vars.extend(assignments(&args)),
                "COPY" => {
                    let mut words: Vec<&str> = args.split_whitespace().collect();
                    let from = words.first().and_then(|w| w.strip_prefix("--from=")).map(str::to_string);
                    if from.is_some() {
                        words.remove(0);
                    }
                    assert!(words.iter().all(|w| !w.starts_with("--")), "unhandled COPY flag in {args}");
                    let (dest, sources) = words.split_last().expect("COPY needs a destination");
                    let dest_path = in_stage(&root, &workdir, dest);
                    for source in sources {
                        let source_path = match &from {
                            Some(stage) => in_stage(&dir.path().join(stage), "/", source),
                            None => Path::new(ROOT).join(source),
                        };
                        assert!(source_path.exists(), "COPY {source}: no such file in the context");
                        let target = if dest.ends_with('/') || sources.len() > 1 {
                            dest_path.join(source_path.file_name().unwrap())
                        } else {
                            dest_path.clone()
                        };
                        copy_tree(&source_path, &target);
                    }
                }
                "RUN" if args.trim_start().starts_with("apt-get") => {
                    let missing: Vec<String> =
                        apt_packages(&args).into_iter().filter(|p| !host_package_installed(p)).collect();
                    assert!(
                        missing.is_empty(),
                        "stage {}: install {missing:?} on the host (.ci/run does)",
                        stage.name
                    );
                }
                "RUN" => {
                    let cwd = in_stage(&root, "/", &workdir);
                    let mut command = Command::new("sh");
                    command
                        .arg("-ec")
                        .arg(&args)
                        .current_dir(&cwd)
                        .envs(&vars)
                        .env("CARGO_NET_OFFLINE", "true");
                    if std::env::var_os("IMAGE_REPLAY_RELEASE").is_none() {
                        command
                            .env("CARGO_PROFILE_RELEASE_LTO", "off")
                            .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "0")
                            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "256")
                            .env("CARGO_PROFILE_RELEASE_INCREMENTAL", "true");
                    }
                    // The replay must not inherit the outer cargo's view of the checkout.
                    for var in
                        ["CARGO_TARGET_DIR", "CARGO_MANIFEST_DIR", "RUSTFLAGS", "CARGO_BUILD_TARGET_DIR"]
                    {
                        command.env_remove(var);
                    }
                    let status = command.status().unwrap();
                    assert!(status.success(), "stage {}: RUN {args} failed ({status})", stage.name);
                }
                "LABEL" | "USER" | "ENTRYPOINT" | "CMD" | "EXPOSE" => {}
                other => panic!("the replay does not know {other}; teach it before using it"),
            }
        }
    }
    dir
}

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

#[test]
fn every_dockerfile_stage_replays_as_written_and_the_runtime_tree_is_complete() {
    let stages = dockerfile();
    let args = BTreeMap::from([("GIT_COMMIT", COMMIT)]);
    let replayed = replay(&stages, &args);
    let rootfs = replayed.path().join("rootfs/staging/rootfs");
    let driver = rootfs.join("cinder-evs-csi");
    assert!(driver.is_file(), "the runtime tree has no driver at {}", driver.display());
    if !is_root() {
        assert!(std::env::var_os("CI").is_none(), "the chroot checks of the image need root in CI");
        eprintln!("SKIPPED the chroot checks of the runtime tree: needs root");
        return;
    }
    let version =
        Command::new("chroot").arg(&rootfs).args(["/cinder-evs-csi", "--version"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&version.stdout);
    assert!(version.status.success(), "--version in the image: {}", String::from_utf8_lossy(&version.stderr));
    assert!(stdout.contains(COMMIT), "--version does not name the GIT_COMMIT build argument: {stdout}");
    // Each tool the node runs must start with only what the image carries.
    for (tool, arg) in [
        ("blkid", "-V"),
        ("losetup", "--version"),
        ("mkfs.ext4", "-V"),
        ("e2fsck", "-V"),
        ("resize2fs", "-d0"),
        ("mkfs.xfs", "-V"),
        ("xfs_growfs", "-V"),
        ("mkfs.btrfs", "--version"),
        ("btrfs", "--version"),
    ] {
        let out =
            Command::new("chroot").arg(&rootfs).arg(format!("/usr/sbin/{tool}")).arg(arg).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("error while loading shared libraries"), "{tool} in the image: {stderr}");
        // (A container runtime provides /dev; the bare chroot does not, so only a tool that
        // cannot start at all counts here.)
        assert!(!stderr.contains("failed to run command"), "{tool} is not in the image: {stderr}");
        assert!(out.status.code().is_some(), "{tool} in the image was killed");
    }
    // The image is built without the `emulator` feature: neither mode is in it.
    for mode in ["emulator", "sandbox"] {
        let out =
            Command::new("chroot").arg(&rootfs).args(["/cinder-evs-csi", mode, "--help"]).output().unwrap();
        assert!(!out.status.success(), "the image's driver has the {mode} mode: {out:?}");
    }
    // The controller, as the image's default user with nothing but the tree, against an
    // emulator outside it: the cloud client, the config and the gRPC socket all work from what
    // the image carries.
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(a_volume_comes_and_goes_through_the_image_controller(&rootfs));
    // Only what the node needs: no shell, no interpreter, no package manager.
    for absent in ["bin/sh", "usr/bin/sh", "usr/bin/python3", "usr/bin/apt-get", "usr/bin/perl"] {
        assert!(!rootfs.join(absent).exists(), "the image carries {absent}");
    }
}

/// Starts the image's controller under chroot as the image's default user, on an emulator
/// of this test, and creates and deletes one volume through its socket.
async fn a_volume_comes_and_goes_through_the_image_controller(rootfs: &Path) {
    use cinder_evs_csi::csi::pb;
    use testkit::cloud::{Auth, clouds_yaml, emulator};
    let cloud = emulator(|_| {}).await;
    let run = rootfs.join("tmp/controller");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("clouds.yaml"), clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, ""))
        .unwrap();
    nix::unistd::chown(&run, Some(65532.into()), Some(65532.into())).unwrap();
    std::fs::set_permissions(run.join("clouds.yaml"), std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .unwrap();
    let mut command = Command::new("chroot");
    command.args(["--userspec=65532:65532"]).arg(rootfs).args([
        "/cinder-evs-csi",
        "controller",
        "--endpoint",
        "unix:///tmp/controller/csi.sock",
        "--cloud-config",
        "/tmp/controller/clouds.yaml",
        "--cluster-id",
        "image-test",
    ]);
    let driver = testkit::Driver::spawn(command);
    let socket = run.join("csi.sock");
    testkit::wait_for_path(&socket, &driver);
    let mut controller =
        pb::controller_client::ControllerClient::new(testkit::unix_channel(socket.clone()).await);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let volume = loop {
        // The readiness gate opens once the cloud has answered.
        match controller.create_volume(testkit::requests::create_request("image-pvc", 1)).await {
            Ok(reply) => break reply.into_inner().volume.unwrap(),
            Err(status) if std::time::Instant::now() < deadline => {
                eprintln!("create in the image: {status:?}; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(status) => panic!("create in the image: {status:?}; log:\n{}", driver.log().join("\n")),
        }
    };
    let in_cloud = cloud.handle.cloud().read(|w| w.volume(&volume.volume_id).is_some());
    assert!(in_cloud, "the volume the image's controller made is not in the cloud: {volume:?}");
    controller
        .delete_volume(pb::DeleteVolumeRequest { volume_id: volume.volume_id, ..Default::default() })
        .await
        .unwrap();
    drop(driver);
    let _ = std::fs::remove_dir_all(&run);
}

#[test]
fn the_runtime_image_is_labelled_runs_unprivileged_by_default_and_has_no_package_manager_base() {
    let stages = dockerfile();
    let runtime = stages.last().unwrap();
    assert_eq!(runtime.base, "scratch");
    let keyword = |k: &str| {
        runtime.instructions.iter().filter(|i| i.keyword == k).map(|i| i.args.clone()).collect::<Vec<_>>()
    };
    assert_eq!(keyword("USER"), ["65532:65532"]);
    let labels: BTreeMap<String, String> = keyword("LABEL").iter().flat_map(|l| assignments(l)).collect();
    for key in ["title", "description", "licenses", "revision", "version"] {
        assert!(
            labels.contains_key(&format!("org.opencontainers.image.{key}")),
            "no OCI label {key}: {labels:?}"
        );
    }
    assert_eq!(labels["org.opencontainers.image.revision"], "${GIT_COMMIT}");
    let cargo_version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        labels["org.opencontainers.image.version"], cargo_version,
        "the image label and Cargo.toml disagree"
    );
    // Every cargo command of the build is locked to Cargo.lock.
    for stage in &stages {
        for run in stage.instructions.iter().filter(|i| i.keyword == "RUN" && i.args.contains("cargo ")) {
            assert!(run.args.contains("--locked"), "unlocked cargo in stage {}: {}", stage.name, run.args);
        }
    }
}

#[test]
fn the_image_builds_for_real_where_a_container_engine_answers() {
    let engine = ["docker", "podman", "buildah"].into_iter().find(|engine| {
        let probe: &[&str] = if *engine == "buildah" { &["version"] } else { &["info"] };
        Command::new(engine).args(probe).output().is_ok_and(|o| o.status.success())
    });
    let Some(engine) = engine else {
        assert!(
            std::env::var_os("CINDER_EVS_CSI_EXPECT_ENGINE").is_none(),
            "CINDER_EVS_CSI_EXPECT_ENGINE is set but no container engine answers"
        );
        eprintln!(
            "SKIPPED the real image build: no container engine answers (docker/podman info, buildah version)"
        );
        return;
    };
    let tag = format!("cinder-evs-csi-test:{}", std::process::id());
    let build: &[&str] = if engine == "buildah" { &["bud"] } else { &["build"] };
    let status = Command::new(engine)
        .args(build)
        .args(["--build-arg", &format!("GIT_COMMIT={COMMIT}"), "-t", &tag, ROOT])
        .status()
        .unwrap();
    assert!(status.success(), "{engine} build failed");
    if engine != "buildah" {
        let out = Command::new(engine).args(["run", "--rm", &tag, "--version"]).output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains(COMMIT), "{engine} run --version: {out:?}");
        let sandbox = Command::new(engine).args(["run", "--rm", &tag, "sandbox", "--help"]).output().unwrap();
        assert!(!sandbox.status.success(), "the image has the sandbox mode: {sandbox:?}");
        let _ = Command::new(engine).args(["rmi", &tag]).status();
    }
}
