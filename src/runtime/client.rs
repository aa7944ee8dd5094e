//! What a tool call knows about its client: the peer to send server-to-client requests
//! and log notifications to, whether the call came over stateless HTTP (so nothing may
//! wait on the client), and the `notifications/message` level the client asked for
//! (none: no log messages, as 2026-07-28 requires of a request that named no level).
//!
//! Filled in by the server for each request; owns no transport logic.
#![allow(deprecated)] // logging/setLevel is deprecated by SEP-2577 but legacy clients still set it

use rmcp::{Peer, RoleServer, model::LoggingLevel};

/// The client of one call (default: none known, e.g. in unit tests).
#[derive(Clone, Default)]
pub struct Client {
    /// The session's peer; `None` when the call has no client to talk to.
    pub peer: Option<Peer<RoleServer>>,
    /// The call came over stateless HTTP (no session): the client cannot answer a
    /// server-to-client request (sampling, elicitation, roots) and no stream outlives
    /// the response.
    pub stateless: bool,
    /// The lowest level of `notifications/message` the client asked for (absent: it
    /// receives none).
    pub log_level: Option<LoggingLevel>,
}

fn rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

impl Client {
    /// Whether the client wants `notifications/message` at `level`.
    pub fn wants_log(&self, level: LoggingLevel) -> bool {
        self.log_level.is_some_and(|min| rank(level) >= rank(min))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_levels_at_or_above_the_chosen_one_pass() {
        let none = Client::default();
        assert!(!none.wants_log(LoggingLevel::Emergency));
        let all = Client {
            log_level: Some(LoggingLevel::Debug),
            ..Client::default()
        };
        assert!(all.wants_log(LoggingLevel::Debug));
        let warn = Client {
            log_level: Some(LoggingLevel::Warning),
            ..Client::default()
        };
        assert!(!warn.wants_log(LoggingLevel::Info));
        assert!(warn.wants_log(LoggingLevel::Warning));
        assert!(warn.wants_log(LoggingLevel::Emergency));
    }
}
