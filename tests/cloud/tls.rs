//! HTTPS to the cloud with a private CA: the emulator serves TLS with a certificate from a CA
//! generated here; the OpenStack backend, configured through clouds.yaml as an operator would,
//! trusts it only with `cacert`, and never for a certificate naming another host. No refusal
//! carries a secret.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cinder_evs_csi::cloud::Backend;
use cinder_evs_csi::cloud::types::VolumeSpec;
use cinder_evs_csi::csi::pb;
use cinder_evs_emulator::https::TlsFiles;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
use testkit::cloud::{Auth, TestCloud, backend, clouds_yaml, emulator};
use testkit::{Driver, unix_channel, wait_for_path};

/// A CA and a server certificate it signed for `names`, written as PEM files into `dir`.
struct Pki {
    ca: PathBuf,
    server: TlsFiles,
}

fn pki(dir: &Path, names: &[&str]) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "cinder-evs-csi test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names).unwrap();
    params.distinguished_name.push(DnType::CommonName, "emulator");
    let cert = params.signed_by(&key, &ca).unwrap();
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    Pki {
        ca: write("ca.pem", ca.pem()),
        server: TlsFiles {
            cert: write("server.pem", cert.pem()),
            key: write("server.key", key.serialize_pem()),
        },
    }
}

/// An emulator serving HTTPS with a certificate for `names`, reached as `https://localhost`.
async fn https_cloud(names: &[&str]) -> (TestCloud, Pki, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path(), names);
    let server = pki.server.clone();
    let cloud = emulator(move |c| {
        c.tls = Some(server);
        c.public_host = Some("localhost".into());
    })
    .await;
    assert!(cloud.handle.base_url().starts_with("https://localhost:"), "{}", cloud.handle.base_url());
    (cloud, pki, dir)
}

fn cacert(path: &Path) -> String {
    format!("    cacert: {}\n", path.display())
}

/// Fails when `message` carries one of the demo user's secrets.
fn assert_no_secret(cloud: &TestCloud, message: &str) {
    let demo = cloud.handle.demo();
    assert!(!message.contains(&demo.password), "the password is in: {message}");
    let leaks = testkit::secrets::scan("error", &[message.to_string()]);
    assert!(leaks.is_empty(), "{leaks:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_refuses_an_https_cloud_whose_ca_it_was_not_given() {
    let (cloud, _pki, _dir) = https_cloud(&["localhost", "127.0.0.1"]).await;
    let b = backend(&clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, ""));
    let error = b.backend.probe().await.expect_err("an unknown CA is trusted");
    let message = error.to_string();
    assert!(message.to_lowercase().contains("certificate"), "not a clear TLS error: {message}");
    assert_no_secret(&cloud, &message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_works_against_an_https_cloud_with_cacert_in_clouds_yaml() {
    let (cloud, pki, _dir) = https_cloud(&["localhost", "127.0.0.1"]).await;
    let b = backend(&clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, &cacert(&pki.ca)));
    b.backend.probe().await.expect("the configured CA is trusted");
    let volume = b
        .backend
        .create_volume(&VolumeSpec { name: "over-tls".into(), size_gib: 1, ..Default::default() })
        .await
        .unwrap();
    b.backend.wait_volume_ready(&testkit::cid(&volume.id), Duration::from_secs(20)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_refuses_a_certificate_issued_for_another_host_name() {
    let (cloud, pki, _dir) = https_cloud(&["cloud.other.example"]).await;
    let b = backend(&clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, &cacert(&pki.ca)));
    let error = b.backend.probe().await.expect_err("a certificate for another name is accepted");
    let message = error.to_string();
    assert!(
        message.to_lowercase().contains("certificate") && message.contains("name"),
        "not a clear host name error: {message}"
    );
    assert_no_secret(&cloud, &message);
}

/// The controller binary, pointed at the HTTPS cloud through `--cloud-config`.
fn controller(cloud: &TestCloud, dir: &Path, extra: &str) -> (Driver, PathBuf) {
    let config = dir.join("clouds.yaml");
    std::fs::write(&config, clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, extra)).unwrap();
    let socket = dir.join("csi.sock");
    let endpoint = format!("unix://{}", socket.display());
    let driver =
        Driver::start(&["controller", "--endpoint", &endpoint, "--cloud-config", config.to_str().unwrap()]);
    wait_for_path(&socket, &driver);
    (driver, socket)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_stays_unready_and_logs_a_tls_error_without_the_ca() {
    let (cloud, _pki, dir) = https_cloud(&["localhost", "127.0.0.1"]).await;
    let (driver, socket) = controller(&cloud, dir.path(), "");
    let line = driver.wait_for_log(
        |l| l.contains("not reachable yet") && l.to_lowercase().contains("certificate"),
        Duration::from_secs(20),
    );
    assert_no_secret(&cloud, &line);
    let mut identity = pb::identity_client::IdentityClient::new(unix_channel(socket).await);
    let probe = identity.probe(pb::ProbeRequest {}).await.unwrap().into_inner();
    assert_eq!(probe.ready, Some(false), "ready without trusting the cloud");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_becomes_ready_over_https_with_cacert() {
    let (cloud, pki, dir) = https_cloud(&["localhost", "127.0.0.1"]).await;
    let (driver, socket) = controller(&cloud, dir.path(), &cacert(&pki.ca));
    driver.wait_for_log(|l| l.contains("cloud backend answered; ready"), Duration::from_secs(20));
    let mut identity = pb::identity_client::IdentityClient::new(unix_channel(socket).await);
    let probe = identity.probe(pb::ProbeRequest {}).await.unwrap().into_inner();
    assert_eq!(probe.ready, Some(true));
}
