//! The controller binary against the emulator (and, for `suite`, against whichever cloud
//! `CSI_REAL_OPENSTACK` names): CSI requests over its socket, hostile ones included, and the
//! `gc` and `import` modes (`cargo test --test controller -- suite::` runs one module).

mod emulator;
mod gc;
mod hostile;
mod huawei;
mod import;
mod suite;
