//! The untyped journal API under its old name: a thin alias of [`super::store::local`]
//! (the file journal behind the store seam). No runtime owner uses it — every store and
//! the event bus go through [`super::store::Backend`] / [`super::store::Log`]; it stays
//! for benches and tests that drive the journal (or name its fsync policy) directly.
//!
//! Owns nothing of its own; new code uses [`super::store`]. Must not touch any toolset,
//! server or transport module.

pub use super::store::local::Journal;
pub use super::store::{
    Fsync as FsyncPolicy, Retain, StoreError as JournalError, StreamOptions as JournalOptions,
};
