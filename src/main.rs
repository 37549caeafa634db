//! Entry point of the `cinder-evs-csi` binary: all logic lives in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    cinder_evs_csi::cli::main()
}
