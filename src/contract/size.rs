//! Sizes: the clouds count whole GiB, CSI counts bytes.

/// One GiB in bytes, as CSI's `int64` byte counts take it.
pub const GIB: i64 = 1 << 30;
