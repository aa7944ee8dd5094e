//! Options of the integrations toolset: whether it may reach loopback and private
//! addresses (`--integrations-allow-private` / `--integrations-deny-private`, file key
//! `integrations-allow-private = true|false`).
//!
//! Owns the integrations toolset's options; it must not touch the integrations toolset.

use serde::Deserialize;

layered! {
    /// Integrations options.
    #[derive(Debug, Default, Clone, clap::Args, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    pub struct IntegrationsOptions {
        /// Let integrations reach loopback and private addresses (default over stdio and
        /// loopback HTTP binds). Link-local / cloud-metadata addresses stay refused.
        #[arg(long, global = true, num_args = 0, default_missing_value = "true", conflicts_with = "integrations_deny_private")]
        pub integrations_allow_private: Option<bool>,
        /// Refuse loopback and private addresses for integrations (default for non-loopback
        /// HTTP binds).
        #[arg(long, global = true, num_args = 0, default_missing_value = "true")]
        #[serde(skip)]
        pub integrations_deny_private: Option<bool>,
    }
}

impl IntegrationsOptions {
    /// The deny flag folded into `integrations_allow_private = false`, so that a layer
    /// that denies overrides a lower one that allows.
    pub(crate) fn settled(self) -> Self {
        IntegrationsOptions {
            integrations_allow_private: match self.integrations_deny_private {
                Some(true) => Some(false),
                _ => self.integrations_allow_private,
            },
            integrations_deny_private: None,
        }
    }
}
