//! The edit script: lines interned to dense ids, lines found on one side only dropped
//! before `similar` runs, the result compacted and expanded back to ops over the full
//! sides.
//!
//! Owns computing the ops only; it must not format anything.

use std::time::Instant;

use rustc_hash::FxHashMap;
use similar::{DiffOp, capture_diff_slices_deadline};

use super::DiffOptions;

/// Interns lines to ids so the algorithms compare integers, not strings. Fx hashing,
/// because the input is the caller's own text (no hash-flooding concern worth SipHash's
/// cost) and hashing every line was the largest single cost of a 10k-line diff. Ids are
/// dense (0..the returned count).
pub(super) fn intern<'a>(old: &[&'a str], new: &[&'a str]) -> (Vec<u32>, Vec<u32>, usize) {
    let mut ids: FxHashMap<&'a str, u32> = FxHashMap::default();
    ids.reserve(old.len() + new.len());
    let mut id = |l: &'a str| {
        let next = ids.len() as u32;
        *ids.entry(l).or_insert(next)
    };
    let o = old.iter().map(|l| id(l)).collect();
    let n = new.iter().map(|l| id(l)).collect();
    (o, n, ids.len())
}

/// The edit script of `o` → `n` as `similar` ops, and whether the deadline cut it short.
/// Lines unique to one side are dropped first (see [`discard_unmatched`]), then
/// `similar` diffs the rest within the deadline.
pub(super) fn edit_script(
    o: &[u32],
    n: &[u32],
    ids: usize,
    opts: &DiffOptions,
) -> (Vec<DiffOp>, bool) {
    let deadline = Instant::now() + opts.timeout;
    let (ro, old_at, rn, new_at) = discard_unmatched(o, n, ids);
    let ops = capture_diff_slices_deadline(opts.algorithm.similar(), &ro, &rn, Some(deadline));
    let approximate = Instant::now() >= deadline;
    (
        compact(o, n, expand(&ops, &old_at, &new_at, o.len(), n.len())),
        approximate,
    )
}

/// Replays `ops` through `similar`'s compaction (slides each change up and down to merge
/// it with its neighbours, as `capture_diff_slices` does on the whole sides), so hunks
/// placed across the dropped lines are joined where they can be.
fn compact(o: &[u32], n: &[u32], ops: Vec<DiffOp>) -> Vec<DiffOp> {
    use similar::algorithms::{Capture, Compact, DiffHook, Replace};
    let mut d = Compact::new(Replace::new(Capture::new()), o, n);
    // The hooks' error type is `Infallible`.
    for op in ops {
        let _ = match op {
            DiffOp::Equal {
                old_index,
                new_index,
                len,
            } => d.equal(old_index, new_index, len),
            DiffOp::Delete {
                old_index,
                old_len,
                new_index,
            } => d.delete(old_index, old_len, new_index),
            DiffOp::Insert {
                old_index,
                new_index,
                new_len,
            } => d.insert(old_index, new_index, new_len),
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => d
                .delete(old_index, old_len, new_index)
                .and_then(|()| d.insert(old_index + old_len, new_index, new_len)),
        };
    }
    let _ = d.finish();
    d.into_inner().into_inner().into_ops()
}

/// Drops the lines that occur only on one side (they can never be matched, so the
/// shortest edit script of what remains is one of the whole: GNU diff and git's xdiff
/// do the same before Myers). Returns the kept ids of each side with their original
/// line numbers. `similar` has such a pass too, but skips it whenever a line was
/// inserted or deleted near either end, which scattered edits always do; without it
/// its middle-snake search is quadratic in the number of edits.
fn discard_unmatched(
    o: &[u32],
    n: &[u32],
    ids: usize,
) -> (Vec<u32>, Vec<usize>, Vec<u32>, Vec<usize>) {
    // Bit 0: the id occurs in old; bit 1: in new.
    let mut seen = vec![0u8; ids];
    for &t in o {
        seen[t as usize] |= 1;
    }
    for &t in n {
        seen[t as usize] |= 2;
    }
    let keep = |side: &[u32]| {
        let mut ids = Vec::with_capacity(side.len());
        let mut at = Vec::with_capacity(side.len());
        for (i, &t) in side.iter().enumerate() {
            if seen[t as usize] == 3 {
                ids.push(t);
                at.push(i);
            }
        }
        (ids, at)
    };
    let (ro, old_at) = keep(o);
    let (rn, new_at) = keep(n);
    (ro, old_at, rn, new_at)
}

/// The edit script of the whole sides from that of the kept lines: only the equal runs
/// of the reduced script are kept (as anchors); every line between two anchors is
/// deleted (old) or inserted (new).
fn expand(
    reduced: &[DiffOp],
    old_at: &[usize],
    new_at: &[usize],
    old_len: usize,
    new_len: usize,
) -> Vec<DiffOp> {
    let mut ops = Vec::new();
    let (mut oi, mut ni) = (0usize, 0usize);
    for op in reduced {
        let DiffOp::Equal {
            old_index,
            new_index,
            len,
        } = *op
        else {
            continue;
        };
        for k in 0..len {
            let (a, b) = (old_at[old_index + k], new_at[new_index + k]);
            // The last op, when Equal, ends at (oi, ni): gaps are only pushed before
            // an anchor.
            match ops.last_mut() {
                Some(DiffOp::Equal { len, .. }) if a == oi && b == ni => *len += 1,
                _ => {
                    push_gap(&mut ops, oi..a, ni..b);
                    ops.push(DiffOp::Equal {
                        old_index: a,
                        new_index: b,
                        len: 1,
                    });
                }
            }
            oi = a + 1;
            ni = b + 1;
        }
    }
    push_gap(&mut ops, oi..old_len, ni..new_len);
    ops
}

/// The op for old lines `o` replaced by new lines `n` (either may be empty).
fn push_gap(ops: &mut Vec<DiffOp>, o: std::ops::Range<usize>, n: std::ops::Range<usize>) {
    ops.push(match (o.len(), n.len()) {
        (0, 0) => return,
        (old_len, 0) => DiffOp::Delete {
            old_index: o.start,
            old_len,
            new_index: n.start,
        },
        (0, new_len) => DiffOp::Insert {
            old_index: o.start,
            new_index: n.start,
            new_len,
        },
        (old_len, new_len) => DiffOp::Replace {
            old_index: o.start,
            old_len,
            new_index: n.start,
            new_len,
        },
    });
}
