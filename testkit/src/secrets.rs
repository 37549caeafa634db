//! The secret values tests hand to the driver, and a scan of the driver's output for them.
//!
//! Every `Driver` scans its stderr and stdout when it is dropped and fails the test that ran
//! it when a registered value shows up. Registered are: the emulator's default passwords,
//! application credential secrets and Huawei secret keys (what `sandbox` uses too), those of
//! every emulator a test starts, the tokens and temporary keys those emulators issue, and
//! whatever a test registers itself (CSI secrets in requests).

use std::sync::{Mutex, MutexGuard, OnceLock};

use cinder_evs_emulator::store::WeakCloud;
use cinder_evs_emulator::{Cloud, EmulatorConfig};

/// Shorter values are too likely to occur by chance to be worth scanning for.
const MIN_LEN: usize = 6;

struct Registry {
    values: Vec<(String, String)>,
    clouds: Vec<WeakCloud>,
}

fn registry() -> MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            let mut registry = Registry { values: Vec::new(), clouds: Vec::new() };
            add_config(&mut registry, &EmulatorConfig::default());
            Mutex::new(registry)
        })
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn add(registry: &mut Registry, label: &str, value: &str) {
    if value.len() >= MIN_LEN && !registry.values.iter().any(|(_, v)| v == value) {
        registry.values.push((label.to_string(), value.to_string()));
    }
}

fn add_config(registry: &mut Registry, config: &EmulatorConfig) {
    for user in &config.users {
        add(registry, &format!("password of {}", user.name), &user.password);
        if let Some((name, secret)) = &user.app_credential {
            add(registry, &format!("application credential secret {name}"), secret);
        }
    }
    for key in &config.access_keys {
        add(registry, &format!("secret key of {}", key.access_key), &key.secret_key);
    }
}

/// Registers one secret value under a label that names it in failure messages.
pub fn register(label: &str, value: &str) {
    add(&mut registry(), label, value);
}

/// Registers the passwords, application credential secrets and secret keys of `config`.
pub fn register_config(config: &EmulatorConfig) {
    add_config(&mut registry(), config);
}

/// Registers every token `cloud` issues, for as long as the cloud lives.
pub fn watch_tokens(cloud: &Cloud) {
    let mut registry = registry();
    registry.clouds.retain(|c| c.upgrade().is_some());
    registry.clouds.push(cloud.downgrade());
}

/// Every secret value known now, with its label.
pub fn known() -> Vec<(String, String)> {
    let registry = registry();
    let mut all = registry.values.clone();
    for cloud in registry.clouds.iter().filter_map(WeakCloud::upgrade) {
        let tokens: Vec<String> = cloud.read(|w| w.tokens.keys().cloned().collect());
        all.extend(tokens.into_iter().map(|t| ("a Keystone token".to_string(), t)));
        let temporary: Vec<(String, String)> = cloud.read(|w| {
            w.access_keys
                .values()
                .filter_map(|k| Some((k.secret.clone(), k.security_token.clone()?)))
                .collect()
        });
        for (secret, token) in temporary {
            all.push(("a temporary secret key".to_string(), secret));
            all.push(("a security token".to_string(), token));
        }
    }
    all
}

/// A secret found in output, with the line it was found in (the secret itself masked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    /// Which output (e.g. `stderr`).
    pub stream: String,
    /// The label the secret was registered under.
    pub label: String,
    /// The line, with every known secret replaced by `<secret: label>`.
    pub line: String,
}

/// The lines of `lines` that contain a known secret.
pub fn scan(stream: &str, lines: &[String]) -> Vec<Leak> {
    let known = known();
    let mut leaks = Vec::new();
    for line in lines {
        for (label, value) in &known {
            if line.contains(value.as_str()) {
                leaks.push(Leak {
                    stream: stream.to_string(),
                    label: label.clone(),
                    line: mask(line, &known),
                });
            }
        }
    }
    leaks
}

fn mask(line: &str, known: &[(String, String)]) -> String {
    known
        .iter()
        .fold(line.to_string(), |l, (label, value)| l.replace(value.as_str(), &format!("<secret: {label}>")))
}

/// A failure message for leaks, or None when there are none.
pub fn report(what: &str, leaks: &[Leak]) -> Option<String> {
    if leaks.is_empty() {
        return None;
    }
    let lines: Vec<String> =
        leaks.iter().map(|l| format!("  [{}] {} in: {}", l.stream, l.label, l.line)).collect();
    Some(format!("{what} leaked {} secret value(s) into its output:\n{}", leaks.len(), lines.join("\n")))
}

/// Fails when `text` (the output of a process the test ran) contains a known secret.
pub fn assert_clean(what: &str, stream: &str, text: &str) {
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    if let Some(message) = report(what, &scan(stream, &lines)) {
        panic!("{message}");
    }
}
