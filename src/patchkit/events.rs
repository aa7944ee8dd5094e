//! The event the patchkit tools publish: `patchkit.patch`, one per written file (by
//! `spool_commit` and `edit_files`), its data the file's [`PatchSummary`]. Payload shape
//! and version only; must not publish anything itself.

use serde::Serialize;

use crate::runtime::events::EventPayload;

use super::diff::PatchSummary;

/// `patchkit.patch`: the summary of one file's change.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Patch<'a>(pub &'a PatchSummary);

impl EventPayload for Patch<'_> {
    const TYPE: &'static str = "patchkit.patch";
    const VERSION: u32 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patch_event_data_is_the_summary() {
        let summary = PatchSummary {
            path: "a.rs".into(),
            change_type: super::super::diff::ChangeType::Modified,
            additions: 1,
            deletions: 2,
            preview: None,
        };
        assert_eq!(
            serde_json::to_value(Patch(&summary)).unwrap(),
            serde_json::to_value(&summary).unwrap()
        );
    }
}
