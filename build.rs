//! Compiles `proto/csi.proto` with protox (pure Rust, no system `protoc`) and tonic/prost, and
//! generates the code that keeps CSI secrets out of logs: a redacting `Debug` for every message
//! that carries a secret or a map, and `RpcFields` impls that name the ids each request is about.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor, Value};

#[path = "src/telemetry/secret_names.rs"]
mod secret_names;

const PACKAGE: &str = "csi.v1";
const CSI_SECRET_OPTION: &str = "csi.v1.csi_secret";
const RUST_KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for", "if",
    "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "static", "struct",
    "trait", "true", "type", "unsafe", "use", "where", "while", "async", "await", "dyn", "abstract",
    "become", "box", "do", "final", "macro", "override", "priv", "typeof", "unsized", "virtual", "yield",
    "try", "gen",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/csi.proto");
    println!("cargo:rerun-if-changed=src/telemetry/secret_names.rs");
    emit_git_commit();

    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_imports(true);
    compiler.open_file("csi.proto")?;
    let pool = compiler.descriptor_pool();
    let fds = compiler.file_descriptor_set();

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    // prost-build's `skip_debug` also applies to every type nested in a matched message, so the
    // nested messages need a hand-made `Debug` too.
    let redacted: Vec<MessageDescriptor> = csi_messages(&pool)
        .into_iter()
        .filter(|m| {
            std::iter::successors(Some(m.clone()), MessageDescriptor::parent_message)
                .any(|m| m.fields().any(|f| is_secret(&pool, &f) || f.is_map()))
        })
        .collect();
    let skipped: Vec<&MessageDescriptor> =
        redacted.iter().filter(|m| m.parent_message().is_none_or(|p| !redacted.contains(&p))).collect();

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .skip_debug(skipped.iter().map(|m| format!(".{}", m.full_name())))
        .compile_fds(fds)?;

    std::fs::write(out_dir.join("csi_debug.rs"), debug_impls(&pool, &redacted))?;
    std::fs::write(out_dir.join("csi_rpc_fields.rs"), rpc_fields_impls(&pool))?;
    Ok(())
}

/// Records the git commit for `--version`; a build outside a checkout says "unknown".
fn emit_git_commit() {
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    println!("cargo:rerun-if-env-changed=CINDER_EVS_CSI_GIT_COMMIT");
    let commit = std::env::var("CINDER_EVS_CSI_GIT_COMMIT").ok().or_else(|| {
        let out = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    });
    let commit = commit.filter(|c| !c.is_empty()).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CINDER_EVS_CSI_GIT_COMMIT={commit}");
}

/// Every message of the CSI package, nested ones included, map entry types excluded.
fn csi_messages(pool: &DescriptorPool) -> Vec<MessageDescriptor> {
    pool.all_messages().filter(|m| m.package_name() == PACKAGE && !m.is_map_entry()).collect()
}

/// A field is secret when the spec marks it `csi_secret` or its name says so.
fn is_secret(pool: &DescriptorPool, field: &FieldDescriptor) -> bool {
    let marked = pool.get_extension_by_name(CSI_SECRET_OPTION).is_some_and(|ext| {
        let options = field.options();
        options.has_extension(&ext) && matches!(options.get_extension(&ext).as_ref(), Value::Bool(true))
    });
    marked || secret_names::is_secret_name(field.name())
}

/// The Rust path of a generated message, relative to the package module.
fn rust_path(message: &MessageDescriptor) -> String {
    let relative = message.full_name().trim_start_matches(PACKAGE).trim_start_matches('.');
    let parts: Vec<&str> = relative.split('.').collect();
    let (name, parents) = parts.split_last().expect("message has a name");
    let mut path: Vec<String> = parents.iter().map(|p| snake_case(p)).collect();
    path.push((*name).to_string());
    path.join("::")
}

fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn rust_ident(name: &str) -> String {
    if RUST_KEYWORDS.contains(&name) { format!("r#{name}") } else { name.to_string() }
}

/// The struct fields prost generates: one per plain field, one per real oneof.
fn struct_fields(message: &MessageDescriptor) -> Vec<(String, Option<FieldDescriptor>)> {
    let mut fields = Vec::new();
    let mut seen_oneofs = Vec::new();
    for field in message.fields() {
        match field.containing_oneof().filter(|o| !o.is_synthetic()) {
            Some(oneof) => {
                if !seen_oneofs.contains(&oneof.name().to_string()) {
                    seen_oneofs.push(oneof.name().to_string());
                    fields.push((oneof.name().to_string(), None));
                }
            }
            None => fields.push((field.name().to_string(), Some(field))),
        }
    }
    fields
}

fn debug_impls(pool: &DescriptorPool, messages: &[MessageDescriptor]) -> String {
    let mut code = String::from("// Generated by build.rs: redacting Debug for CSI messages.\n");
    for message in messages {
        let path = rust_path(message);
        writeln!(code, "impl ::core::fmt::Debug for {path} {{").unwrap();
        writeln!(code, "    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {{")
            .unwrap();
        writeln!(code, "        f.debug_struct({:?})", message.name()).unwrap();
        for (name, field) in struct_fields(message) {
            let ident = rust_ident(&name);
            let value = match &field {
                Some(f) if is_secret(pool, f) => {
                    format!("&crate::telemetry::redact::Redacted::of(&self.{ident})")
                }
                Some(f) if f.is_map() && is_string_map(f) => {
                    format!("&crate::telemetry::redact::RedactedMap(&self.{ident})")
                }
                _ => format!("&self.{ident}"),
            };
            writeln!(code, "            .field({name:?}, {value})").unwrap();
        }
        writeln!(code, "            .finish()\n    }}\n}}").unwrap();
    }
    code
}

fn is_string_map(field: &FieldDescriptor) -> bool {
    match field.kind() {
        Kind::Message(entry) => entry.map_entry_value_field().kind().as_message().is_none(),
        _ => false,
    }
}

/// Ids a request names, so every RPC's log line and span carry them without hand-written code.
const ID_FIELDS: &[(&str, &str)] = &[
    ("volume_id", "volume_id"),
    ("snapshot_id", "snapshot_id"),
    ("group_snapshot_id", "group_snapshot_id"),
    ("source_volume_id", "volume_id"),
    ("node_id", "node_id"),
    ("name", "name"),
];

fn rpc_fields_impls(pool: &DescriptorPool) -> String {
    let mut code = String::from("// Generated by build.rs: ids named by each CSI request.\n");
    for message in csi_messages(pool) {
        if !message.name().ends_with("Request") || message.parent_message().is_some() {
            continue;
        }
        writeln!(code, "impl crate::csi::observe::RpcFields for {} {{", rust_path(&message)).unwrap();
        let mut done = Vec::new();
        for (proto_name, accessor) in ID_FIELDS {
            let Some(field) = message.get_field_by_name(proto_name) else { continue };
            if field.kind() != Kind::String || field.is_list() || done.contains(accessor) {
                continue;
            }
            done.push(*accessor);
            writeln!(code, "    fn {accessor}(&self) -> &str {{ &self.{} }}", rust_ident(proto_name))
                .unwrap();
        }
        writeln!(code, "}}").unwrap();
    }
    code
}
