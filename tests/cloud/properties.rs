//! Bad input: every parser and validator that reads text from outside (the kernel, operators'
//! files and environment, StorageClasses, flags, cloud error bodies) must never panic on
//! arbitrary input, and must answer with a precise error or a value that round-trips.

use std::collections::HashMap;

use cinder_evs_csi::cloud::CloudError;
use cinder_evs_csi::cloud::http::Reply;
use cinder_evs_csi::cloud::huawei::evs;
use cinder_evs_csi::cloud::openstack::fault;
use cinder_evs_csi::config::{cloud_conf, clouds_yaml, env};
use cinder_evs_csi::csi::pb::CapacityRange;
use cinder_evs_csi::csi::{params, validate};
use cinder_evs_csi::host::Error as HostError;
use cinder_evs_csi::host::format::{
    BLOCK_SIZE_KEY, BYTES_PER_INODE_KEY, EXT4_FEATURES_KEY, INODE_SIZE_KEY, MkfsOptions,
};
use cinder_evs_csi::host::mount::parse_mountinfo;
use cinder_evs_csi::server::Endpoint;
use proptest::prelude::*;
use tonic::Code;

const GIB: i64 = 1 << 30;

/// Text made of the pieces a parser cares about, mixed with arbitrary characters: random
/// strings alone almost never reach the interesting branches.
fn text_from(pieces: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![3 => prop::sample::select(pieces).prop_map(str::to_string), 1 => any::<String>()],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

/// The kernel's mountinfo escaping of space, tab, newline and backslash.
fn escape(field: &str) -> String {
    field.replace('\\', "\\134").replace(' ', "\\040").replace('\t', "\\011").replace('\n', "\\012")
}

fn field() -> impl Strategy<Value = String> {
    prop::collection::vec(prop_oneof![4 => any::<char>().prop_filter("no NUL", |c| *c != '\0'), 1 => prop::sample::select(vec![' ', '\\', '\t', '\n'])], 1..20)
        .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #[test]
    fn mountinfo_parsing_never_panics(text in text_from(&[" ", " - ", ":", "\\", "\\040", "\\7", "\n", "12", "/", ","])) {
        let _ = parse_mountinfo(&text);
    }

    #[test]
    fn mountinfo_fields_with_kernel_escapes_round_trip(
        id in any::<u32>(), parent in any::<u32>(), major in any::<u32>(), minor in any::<u32>(),
        root in field(), point in field(), fs in field(), source in field(),
    ) {
        let line = format!(
            "{id} {parent} {major}:{minor} {} /{} rw,relatime shared:1 - {} {} rw\n",
            escape(&root), escape(&point), escape(&fs), escape(&source)
        );
        let entries = parse_mountinfo(&line);
        prop_assert_eq!(entries.len(), 1, "{:?}", line);
        let entry = &entries[0];
        prop_assert_eq!((entry.id, entry.parent, entry.major, entry.minor), (id, parent, major, minor));
        prop_assert_eq!(&entry.root, &root);
        let expected_point = format!("/{point}");
        prop_assert_eq!(entry.mount_point.to_str(), Some(expected_point.as_str()));
        prop_assert_eq!(&entry.fs_type, &fs);
        prop_assert_eq!(&entry.source, &source);
    }

    #[test]
    fn cloud_conf_parsing_never_panics_and_errors_name_the_line(text in text_from(&[
        "[Global]", "[Global \"", "\"]", "[BlockStorage]", "[", "]", "\n", "=", "auth-url", "username",
        "password", "use-clouds", "true", "region", "ca-file", "#", ";", "\"", "tenant-id", " ",
    ])) {
        if let Err(e) = cloud_conf::parse(&text, "cloud.conf") {
            prop_assert!(e.to_string().starts_with("cloud.conf"), "{}", e);
            prop_assert!(!e.to_string().contains("password="), "{}", e);
        }
    }

    #[test]
    fn clouds_yaml_parsing_never_panics(
        clouds in text_from(&["clouds:", "\n", "  ", "auth:", "auth_url: ", "http://x", "username: ", "- ",
            ": ", "{", "}", "[", "]", "region_name: ", "verify: ", "false", "block_storage:", "&a", "*a", "<<: "]),
        secure in proptest::option::of(text_from(&["clouds:", "\n", "  ", "password: ", "x", ": "])),
    ) {
        if let Err(e) = clouds_yaml::parse(&clouds, secure.as_deref(), "clouds.yaml") {
            prop_assert!(e.to_string().starts_with("clouds.yaml"), "{}", e);
        }
    }

    #[test]
    fn os_environment_parsing_never_panics(
        pairs in prop::collection::vec((prop::sample::select(vec![
            "OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME", "OS_PROJECT_ID",
            "OS_USER_DOMAIN_NAME", "OS_REGION_NAME", "OS_INTERFACE", "OS_INSECURE", "OS_CACERT",
            "OS_AUTH_TYPE", "OS_APPLICATION_CREDENTIAL_ID", "OS_TOKEN", "OS_CLOUD", "OS_X",
        ]), any::<String>()), 0..12),
    ) {
        let env: HashMap<String, String> = pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let _ = env::is_present(&env);
        let _ = env::parse(&env);
    }

    #[test]
    fn storage_class_parameters_are_parsed_or_refused_as_invalid_argument(
        pairs in prop::collection::vec((prop_oneof![
            prop::sample::select(vec!["type", "availability", "fsType", "csi.storage.k8s.io/fstype",
                "multiattach", "cloud", "iops", "throughput", "encrypted", "kmsKeyId", "scsi",
                "csi.storage.k8s.io/pvc/name"]).prop_map(str::to_string),
            any::<String>(),
        ], prop_oneof![
            prop::sample::select(vec!["true", "false", "ext4", "XFS", "", "-1", "18446744073709551616", "3000"])
                .prop_map(str::to_string),
            any::<String>(),
        ]), 0..8),
    ) {
        let parameters: HashMap<String, String> = pairs.into_iter().collect();
        if let Err(e) = params::parse(&parameters) {
            prop_assert_eq!(e.code(), Code::InvalidArgument, "{}", e);
        }
    }

    #[test]
    fn capacity_ranges_give_a_fitting_whole_gib_or_a_precise_error(
        required in prop_oneof![any::<i64>(), 0..10 * GIB, Just(i64::MAX), Just(i64::MAX - GIB)],
        limit in prop_oneof![any::<i64>(), 0..10 * GIB, Just(i64::MAX), Just(0)],
        default in 1u64..10,
    ) {
        let range = CapacityRange { required_bytes: required, limit_bytes: limit };
        match params::size_gib(Some(&range), default) {
            Ok(gib) => {
                let bytes = i128::from(gib) * i128::from(GIB);
                prop_assert!(gib >= 1);
                prop_assert!(bytes >= i128::from(required), "{} GiB < {}", gib, required);
                prop_assert!(limit == 0 || bytes <= i128::from(limit), "{} GiB > {}", gib, limit);
            }
            Err(e) => prop_assert!(
                matches!(e.code(), Code::InvalidArgument | Code::OutOfRange), "{}", e
            ),
        }
    }

    #[test]
    fn endpoints_parse_to_a_value_that_round_trips_or_are_refused(
        text in prop_oneof![
            any::<String>(),
            (prop::sample::select(vec!["unix://", "tcp://", "unix:", "http://", ""]), any::<String>())
                .prop_map(|(scheme, rest)| format!("{scheme}{rest}")),
            (any::<String>(), any::<u32>()).prop_map(|(host, port)| format!("tcp://{host}:{port}")),
        ],
    ) {
        if let Ok(endpoint) = text.parse::<Endpoint>() {
            prop_assert_eq!(endpoint.to_string(), text.clone());
            prop_assert_eq!(endpoint.to_string().parse::<Endpoint>(), Ok(endpoint));
        }
    }

    #[test]
    fn driver_names_are_accepted_only_in_domain_notation(name in prop_oneof![
        any::<String>(),
        prop::collection::vec(prop::sample::select(vec!['a', 'Z', '0', '.', '-', '_', 'é']), 0..70)
            .prop_map(|c| c.into_iter().collect::<String>()),
    ]) {
        if validate::driver_name(&name).is_ok() {
            prop_assert!(!name.is_empty() && name.len() <= 63);
            prop_assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'));
            prop_assert!(name.starts_with(|c: char| c.is_ascii_alphanumeric()));
            prop_assert!(name.ends_with(|c: char| c.is_ascii_alphanumeric()));
        }
    }

    #[test]
    fn fault_bodies_give_a_short_message_and_an_error_for_any_status(
        status in 400u16..600,
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..600),
            any::<String>().prop_map(|m| serde_json::json!({"itemNotFound": {"message": m, "code": 404}}).to_string().into_bytes()),
            any::<String>().prop_map(|m| serde_json::json!({"error": {"message": m}}).to_string().into_bytes()),
            any::<String>().prop_map(|m| serde_json::json!({"error_msg": m}).to_string().into_bytes()),
        ],
    ) {
        let reply = Reply {
            status: reqwest::StatusCode::from_u16(status).unwrap(),
            headers: Default::default(),
            body,
        };
        let message = fault::message(&reply);
        prop_assert!(!message.is_empty());
        prop_assert!(message.chars().count() <= 500);
        let _ = fault::to_error(&reply, "volume", "v1");
    }

    #[test]
    fn fault_messages_are_the_clouds_own_words(
        message in prop::collection::vec(prop::sample::select(vec!['a', 'Z', '0', ' ', '.', ':', 'é']), 1..100)
            .prop_map(|c| format!("x{}x", c.into_iter().collect::<String>())),
    ) {
        let body = serde_json::json!({"badRequest": {"message": message, "code": 400}}).to_string();
        let reply = Reply { status: reqwest::StatusCode::BAD_REQUEST, headers: Default::default(), body: body.into_bytes() };
        prop_assert_eq!(fault::message(&reply), message);
    }

    #[test]
    fn volume_context_mkfs_options_are_parsed_or_refused_as_invalid_argument(
        key in prop_oneof![Just(BLOCK_SIZE_KEY), Just(INODE_SIZE_KEY), Just(BYTES_PER_INODE_KEY), Just(EXT4_FEATURES_KEY), Just("other")],
        value in text_from(&["1024", "4096", "0", "-1", "99999999999999999999", "x", "^", "has_journal", ",", " ", ";", "$(", "\n"]),
    ) {
        let context = HashMap::from([(key.to_string(), value.clone())]);
        match MkfsOptions::from_context(&context) {
            Ok(_) => {}
            Err(HostError::InvalidArgument(message)) => prop_assert!(message.contains(key), "{}", message),
            Err(other) => prop_assert!(false, "{key}={value:?}: {other:?}"),
        }
    }

    #[test]
    fn evs_disk_bodies_parse_or_fail_as_a_protocol_error(text in text_from(&[
        "{", "}", "[", "]", ",", ":", "\"volumes\"", "\"volume\"", "\"id\"", "\"size\"", "\"status\"",
        "\"attachments\"", "\"metadata\"", "\"x\"", "1", "-1", "null", "true", "1e999",
    ])) {
        for parsed in [evs::volume_page_from_json(text.as_bytes()).map(drop), evs::volume_from_json(text.as_bytes()).map(drop)] {
            if let Err(e) = parsed {
                prop_assert!(matches!(e, CloudError::Protocol(_)), "{:?}: {:?}", text, e);
            }
        }
    }

    #[test]
    fn huawei_percent_encoding_round_trips_and_uses_only_unreserved_characters(text in any::<String>()) {
        let encoded = cinder_evs_csi::cloud::huawei::sign::encode(&text);
        prop_assert!(encoded.chars().all(|c| c.is_ascii_alphanumeric() || "-_.~%".contains(c)), "{}", encoded);
        prop_assert_eq!(percent_decode(&encoded), text);
    }
}

/// A strict decoder for what `encode` produced.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}
