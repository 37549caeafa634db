//! The driver's benchmark: the release binary, driven over gRPC on a unix socket against the
//! in-process cloud emulator with set latencies. Prints one table; with `BENCH_WRITE_DOCS=1`
//! also writes it, with the machine it came from, into docs/benchmarks.md.
//!
//! Run: `cargo bench --bench driver` (node rows need root; they are skipped otherwise).

mod cloud;
mod controller;
mod node;
mod process;
mod report;
mod requests;
mod scale;
mod sequential;

use std::path::Path;
use std::time::Instant;

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it,
    // and a benchmark has no place in the test run.
    if !std::env::args().any(|a| a == "--bench") {
        println!("the driver benchmark runs under `cargo bench --bench driver`; nothing to test");
        return;
    }
    cinder_evs_csi::tls::install_crypto_provider();
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rows = Vec::new();
    // `BENCH_ONLY=controller` or `BENCH_ONLY=node` runs one half (for profiling a row),
    // `BENCH_ONLY=sequential` or `BENCH_ONLY=scale` only those rows of issue 19, and within the
    // sequential rows `BENCH_SEQ_FACES=cinder|evs`, `BENCH_SEQ_JITTER=steady|jitter` and
    // `BENCH_SEQ_MAX_MS=1000` narrow them further (docs/benchmarks.md lists them);
    // docs/benchmarks.md is only rewritten from a full run.
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    if only != "node" {
        controller::run(dir.path(), &mut rows).await;
        cloud::remove_state_dir();
    }
    if only != "controller" && only != "sequential" && only != "scale" {
        node::run(dir.path(), &mut rows).await;
    }

    let table = report::table(&rows);
    let machine = report::machine();
    println!("\n{table}\n{machine}\nbenchmark took {:.0} s", started.elapsed().as_secs_f64());
    if only.is_empty() && std::env::var_os("BENCH_WRITE_DOCS").is_some_and(|v| v != "0") {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/benchmarks.md");
        let results = format!("{table}\nMachine:\n\n{machine}");
        report::write_docs(&path, &results).expect("write docs/benchmarks.md");
        println!("wrote {}", path.display());
    }
}
