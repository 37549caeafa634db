//! Test support for the host room: the root check every kernel-touching test starts with.

/// True when the test may touch the kernel. Without root: fails under CI, otherwise prints
/// `SKIPPED <test>: <reason>` and returns false.
pub(crate) fn root_or_skip(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "{test} needs root, and CI runs as root");
    eprintln!("SKIPPED {test}: needs root");
    false
}
