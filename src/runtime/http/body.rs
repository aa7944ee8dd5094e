//! Reading an upstream response body within the call's memory budget: the body is
//! streamed chunk by chunk and every byte kept is charged to the caller's [`Budget`]
//! while it arrives, so an oversized answer (or a lying `Content-Length`, or a
//! decompression bomb) stops at the budget instead of after it has been buffered.
//! [`BodyLimit::Tail`] keeps only the last bytes of a long body (job logs), counting
//! what it dropped.
//!
//! Owns the reading and the accounting of one body only; the request, retries and cache
//! stay in the call engine (`mod.rs`).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::runtime::budget::{Budget, BudgetExceeded, Held};

/// How much of a response body an attempt keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyLimit {
    /// The whole body; one larger than the call's budget is an error naming the budget.
    #[default]
    Whole,
    /// Only the last `n` bytes (at most); what came before is read, counted and dropped.
    Tail(usize),
}

impl BodyLimit {
    /// Distinguishes, in the cache key, a request that keeps only a tail of the body, so
    /// it never joins (or is joined by) a flight that wants the whole body.
    pub fn cache_key_part(self) -> String {
        match self {
            BodyLimit::Whole => String::new(),
            BodyLimit::Tail(n) => format!(";tail={n}"),
        }
    }
}

/// A body read within bounds. The hold keeps its bytes charged to the call's budget for
/// as long as any clone of the response lives.
#[derive(Clone)]
pub struct BoundedBody {
    pub bytes: Bytes,
    /// Bytes dropped from the front under [`BodyLimit::Tail`].
    pub dropped: u64,
    pub hold: Option<Arc<Held>>,
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    TooLarge(#[from] BudgetExceeded),
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
}

/// Reads `resp`'s body under `limit`, charging what it keeps to `budget`.
pub async fn read(
    resp: reqwest::Response,
    budget: &Budget,
    limit: BodyLimit,
    host: &str,
) -> Result<BoundedBody, BodyError> {
    let what = format!("the response body from {host}");
    let held = budget.hold(0, &what)?;
    match limit {
        BodyLimit::Whole => read_whole(resp, held, &what).await,
        BodyLimit::Tail(keep) => read_tail(resp, held, keep.max(1), &what).await,
    }
}

async fn read_whole(
    mut resp: reqwest::Response,
    mut held: Held,
    what: &str,
) -> Result<BoundedBody, BodyError> {
    // A declared length is charged up front: an answer that cannot fit fails before
    // its first byte is read.
    let declared = resp.content_length().unwrap_or(0);
    held.grow(declared, what)?;
    let mut buf = BytesMut::with_capacity(usize::try_from(declared).unwrap_or(0));
    while let Some(chunk) = resp.chunk().await? {
        held.grow_to((buf.len() + chunk.len()) as u64, what)?;
        buf.extend_from_slice(&chunk);
    }
    let len = buf.len() as u64;
    if held.bytes() > len {
        held.shrink(held.bytes() - len);
    }
    Ok(BoundedBody {
        bytes: buf.freeze(),
        dropped: 0,
        hold: Some(Arc::new(held)),
    })
}

async fn read_tail(
    mut resp: reqwest::Response,
    mut held: Held,
    keep: usize,
    what: &str,
) -> Result<BoundedBody, BodyError> {
    let mut buf: Vec<u8> = Vec::new();
    let mut dropped = 0u64;
    while let Some(chunk) = resp.chunk().await? {
        if chunk.len() >= keep {
            dropped += (buf.len() + chunk.len() - keep) as u64;
            buf.clear();
            buf.extend_from_slice(&chunk[chunk.len() - keep..]);
        } else {
            buf.extend_from_slice(&chunk);
            // Compacting only past twice the window keeps the copying linear.
            if buf.len() > 2 * keep {
                let cut = buf.len() - keep;
                buf.drain(..cut);
                dropped += cut as u64;
            }
        }
        held.grow_to(buf.capacity() as u64, what)?;
    }
    if buf.len() > keep {
        let cut = buf.len() - keep;
        buf.drain(..cut);
        dropped += cut as u64;
    }
    buf.shrink_to_fit();
    if held.bytes() > buf.len() as u64 {
        held.shrink(held.bytes() - buf.len() as u64);
    }
    Ok(BoundedBody {
        bytes: Bytes::from(buf),
        dropped,
        hold: Some(Arc::new(held)),
    })
}
