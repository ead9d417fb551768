//! What one operation shares with the stores it opens: the client's options and the
//! registry client (connection pool, tokens, credentials) built from them.

use std::sync::Arc;

use crate::error::Result;
use crate::options::ClientOptions;
use crate::store::registry::RegistryClient;

/// What one operation shares with the stores it opens.
#[derive(Clone)]
pub struct Context {
    pub options: Arc<ClientOptions>,
    pub registry: Arc<RegistryClient>,
    /// Images verified under this client's trusts (see `signature::VerifiedMemo`).
    pub(crate) verified: Arc<crate::signature::VerifiedMemo>,
    /// In-memory pulls now extracting, so concurrent pulls of one module share them.
    pub(crate) extractions: Arc<crate::shared_extraction::SharedExtractions>,
}

impl Context {
    pub fn new(options: ClientOptions) -> Result<Context> {
        let registry = Arc::new(RegistryClient::new(&options)?);
        Ok(Context {
            options: Arc::new(options),
            registry,
            verified: Default::default(),
            extractions: Default::default(),
        })
    }
}
