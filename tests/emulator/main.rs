//! The emulator's API faces over real HTTP, as the clouds' own clients call them: one module
//! per family of behaviour (`cargo test --test emulator -- volumes::` runs one).

mod actions;
mod compute;
mod faults;
mod fidelity;
mod huawei;
mod identity;
mod volumes;
