//! The untyped journal API, kept for the one owner not yet on the typed store (the event
//! bus, [`super::events`]): a thin name for [`super::store::local`] (the file journal
//! behind the store seam).
//!
//! Owns nothing of its own; new code uses [`super::store::Stream`]. Must not touch any
//! toolset, server or transport module.

pub use super::store::local::Journal;
pub use super::store::{
    Fsync as FsyncPolicy, Retain, StoreError as JournalError, StreamOptions as JournalOptions,
};
