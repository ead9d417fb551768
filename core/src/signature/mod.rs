//! Cosign signatures: signing images when they are pushed and verifying them, under a
//! policy, before a pulled or fetched module is returned or cached. Signatures are
//! stored the way cosign stores them, so `cosign sign` and `cosign verify` interoperate
//! in both directions.
//!
//! payload.rs the simple-signing document; keys.rs public and private keys; policy.rs
//! which locations need which trust; find.rs where an image's signatures are; verify.rs
//! checking them; sign.rs writing one. keyless.rs verifies certificate-based (keyless)
//! signatures offline; cosign_key.rs opens cosign's encrypted private keys.

pub mod cosign_key;
pub mod find;
pub mod keyless;
#[cfg(any(test, feature = "testkit"))]
pub mod keyless_testkit;
pub mod keys;
pub mod payload;
pub(crate) mod pem;
pub mod policy;
pub mod sign;
pub mod verify;

pub use keys::{PublicKey, SigningKey};
pub use policy::{Requirement, Trust, VerificationPolicy};
pub use verify::Verified;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::digest::Digest;

/// Digests this client has verified, and under which trust: a module cache hit needs no
/// second look at the registry for an image verified a moment ago by the same client.
#[derive(Default)]
pub(crate) struct VerifiedMemo {
    seen: Mutex<HashMap<Digest, Vec<Arc<Trust>>>>,
}

/// Enough for every image a control plane runs; past it the memo starts over.
const MEMO_ENTRIES: usize = 4096;

impl VerifiedMemo {
    pub(crate) fn contains(&self, digest: &Digest, trust: &Arc<Trust>) -> bool {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(digest)
            .is_some_and(|ts| ts.iter().any(|t| Arc::ptr_eq(t, trust) || **t == **trust))
    }

    pub(crate) fn insert(&self, digest: &Digest, trust: &Arc<Trust>) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= MEMO_ENTRIES {
            seen.clear();
        }
        let trusts = seen.entry(digest.clone()).or_default();
        if !trusts.iter().any(|t| Arc::ptr_eq(t, trust)) {
            trusts.push(trust.clone());
        }
    }
}
