//! The secret scan every driver process of every test goes through (testkit/src/secrets.rs):
//! it knows the secret values the tests use, and it catches one that reaches a log.

use std::time::Duration;

use testkit::cloud::emulator;
use testkit::{Driver, secrets, temp_socket, wait_for_path};

#[test]
fn the_emulators_default_secrets_are_registered() {
    let known: Vec<String> = secrets::known().into_iter().map(|(_, v)| v).collect();
    let defaults = cinder_evs_emulator::EmulatorConfig::default();
    for user in &defaults.users {
        assert!(known.contains(&user.password), "password of {} is not scanned for", user.name);
        if let Some((_, secret)) = &user.app_credential {
            assert!(known.contains(secret), "the application credential of {} is not scanned for", user.name);
        }
    }
    for key in &defaults.access_keys {
        assert!(known.contains(&key.secret_key), "secret key of {} is not scanned for", key.access_key);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_a_test_emulator_issues_are_registered() {
    let cloud = emulator(|c| c.users[1].password = "a-password-only-this-test-uses".into()).await;
    let session = cloud.login("demo").await;
    let known: Vec<String> = secrets::known().into_iter().map(|(_, v)| v).collect();
    assert!(known.contains(&session.token), "the issued token is not scanned for");
    assert!(known.contains(&"a-password-only-this-test-uses".to_string()));
}

#[test]
fn the_scan_finds_a_registered_value_and_masks_it_in_the_report() {
    secrets::register("a planted test secret", "planted-s3cret-in-a-line");
    let lines =
        vec!["an innocent line".to_string(), "auth failed for password=planted-s3cret-in-a-line".to_string()];
    let leaks = secrets::scan("stderr", &lines);
    assert_eq!(leaks.len(), 1, "{leaks:?}");
    assert_eq!(leaks[0].label, "a planted test secret");
    let report = secrets::report("a process", &leaks).expect("a report");
    assert!(report.contains("a planted test secret"), "{report}");
    assert!(!report.contains("planted-s3cret-in-a-line"), "the report repeats the secret: {report}");
    assert_eq!(secrets::scan("stderr", &lines[..1]), Vec::new());
}

/// The planted defect: the node logs its node id at start, so registering that id as a
/// secret makes the driver's log "leak" it, and dropping the Driver must fail the test.
#[test]
#[should_panic(expected = "leaked 1 secret value(s)")]
fn a_driver_whose_log_holds_a_registered_secret_fails_its_test() {
    let planted = "planted-secret-node-id-7f3a";
    secrets::register("the planted node id", planted);
    let (_dir, path, endpoint) = temp_socket();
    let driver = Driver::start(&["node", "--endpoint", &endpoint, "--node-id", planted]);
    wait_for_path(&path, &driver);
    driver.wait_for_log(|l| l.contains(planted), Duration::from_secs(20));
    drop(driver);
}

#[test]
fn a_driver_whose_log_holds_no_secret_drops_quietly() {
    let (_dir, path, endpoint) = temp_socket();
    let driver = Driver::start(&["node", "--endpoint", &endpoint, "--node-id", "an-ordinary-node-id"]);
    wait_for_path(&path, &driver);
    driver.wait_for_log(|l| l.contains("an-ordinary-node-id"), Duration::from_secs(20));
    assert_eq!(driver.secret_leaks(), Vec::new());
}
