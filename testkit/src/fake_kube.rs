//! A fake Kubernetes API server: answers GETs with canned JSON per path (a sequence, whose
//! last answer repeats), 404 with a Status for anything else, counts requests per path, and
//! writes a kubeconfig pointing kube-rs at it.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

#[derive(Default)]
struct State {
    answers: BTreeMap<String, VecDeque<Value>>,
    hits: BTreeMap<String, u32>,
}

/// The running fake and its kubeconfig.
pub struct FakeKube {
    state: Arc<Mutex<State>>,
    /// A kubeconfig file for the fake.
    pub kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

/// A list object of `kind` (e.g. `NodeList`) holding `items`.
pub fn list(api_version: &str, kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "metadata": {"resourceVersion": "1"}, "items": items})
}

impl FakeKube {
    /// Starts the fake on a loopback port.
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let state = shared.clone();
            async move {
                let path = uri.path().to_string();
                let mut state = state.lock().unwrap();
                *state.hits.entry(path.clone()).or_default() += 1;
                let answer = state.answers.get_mut(&path).and_then(|queue| {
                    if queue.len() > 1 { queue.pop_front() } else { queue.front().cloned() }
                });
                match answer {
                    Some(body) => (axum::http::StatusCode::OK, axum::Json(body)),
                    None => (
                        axum::http::StatusCode::NOT_FOUND,
                        axum::Json(json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Failure", "message": format!("{path} not found"),
                            "reason": "NotFound", "code": 404})),
                    ),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{address}\n\
                 contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n\
                 current-context: fake\nusers:\n- name: fake\n  user: {{}}\n"
            ),
        )
        .unwrap();
        Self { state, kubeconfig, _dir: dir }
    }

    /// Answers GET `path` with `body` from now on.
    pub fn serve(&self, path: &str, body: Value) {
        self.serve_sequence(path, vec![body]);
    }

    /// Answers GET `path` with each body in turn, the last one from then on.
    pub fn serve_sequence(&self, path: &str, bodies: Vec<Value>) {
        self.state.lock().unwrap().answers.insert(path.to_string(), bodies.into());
    }

    /// How many requests reached `path`.
    pub fn hits(&self, path: &str) -> u32 {
        self.state.lock().unwrap().hits.get(path).copied().unwrap_or(0)
    }

    /// A kube-rs client for the fake.
    pub async fn client(&self) -> kube::Client {
        cinder_evs_csi::k8s::client(Some(&self.kubeconfig), std::time::Duration::from_secs(10)).await.unwrap()
    }
}
