//! The operations: pull, push, copy, resolve. Everything here is store-agnostic; stores
//! come from the location, formats from the manifest.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use crate::copy::Copy;
use crate::deadline;
use crate::digest::{Descriptor, Digest};
use crate::embed::runtime::{run_blocking, run_bounded};
use crate::error::{Error, ErrorKind, Result};
use crate::extract::{self, Destination};
use crate::formats::{self, ConfigView, ModuleSource};
use crate::image::{BlobBody, ImageInfo, WasmImage};
use crate::location::Location;
use crate::options::{CallOptions, ClientOptions};
use crate::select;
use crate::shared_extraction::{self, Turn};
use crate::signature;
use crate::store::verified::{self, BlobOpener};
use crate::store::Context;
use crate::store::{self, Access, RawManifest, Store};

/// What `resolve` reports: the top-level manifest or index a reference names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

/// The most layer bytes a pull from local files reads as bounded work (see
/// `embed::runtime::run_bounded`): about a millisecond of reading and hashing.
const BOUNDED_LAYER_BYTES: u64 = 1 << 20;

/// Holds options and connection state; cheap to clone and safe to share between threads.
#[derive(Clone)]
pub struct Client {
    ctx: Context,
}

/// The client behind the module-level functions of every binding.
pub fn default_client() -> Result<&'static Client> {
    static DEFAULT: OnceLock<Client> = OnceLock::new();
    if let Some(c) = DEFAULT.get() {
        return Ok(c);
    }
    let client = Client::new(ClientOptions::default())?;
    Ok(DEFAULT.get_or_init(|| client))
}

struct Pulled {
    info: ImageInfo,
    module: Option<bytes::Bytes>,
    blobs: Vec<(Descriptor, BlobBody)>,
}

impl Client {
    pub fn new(options: ClientOptions) -> Result<Client> {
        Ok(Client {
            ctx: Context::new(options)?,
        })
    }

    /// What this client's operations share with the stores they open.
    pub(crate) fn context(&self) -> &Context {
        &self.ctx
    }

    pub fn options(&self) -> &ClientOptions {
        &self.ctx.options
    }

    /// Fetches, verifies and extracts the module into memory.
    pub async fn pull(&self, location: &str, call: &CallOptions) -> Result<WasmImage> {
        let destination = match &call.module_allocator {
            Some(allocate) => Destination::Buffer(allocate.clone()),
            None => Destination::Memory,
        };
        let pulled = deadline::within(
            &self.ctx.options,
            self.pull_into(location, destination, call),
        )
        .await?;
        let module = pulled
            .module
            .ok_or_else(|| Error::internal("module missing after an in-memory pull"))?;
        Ok(WasmImage {
            info: pulled.info,
            module,
            blobs: pulled.blobs,
        })
    }

    /// Fetches and verifies the module straight into `path` (never held in memory). The
    /// file appears only when everything checked out.
    pub async fn pull_to_file(
        &self,
        location: &str,
        path: &Path,
        call: &CallOptions,
    ) -> Result<ImageInfo> {
        if path.is_dir() {
            return Err(Error::invalid_argument(format!(
                "{} is a directory; give a file path",
                path.display()
            )));
        }
        let into_file = self.pull_into(location, Destination::File(path.to_path_buf()), call);
        Ok(deadline::within(&self.ctx.options, into_file).await?.info)
    }

    async fn pull_into(
        &self,
        location: &str,
        destination: Destination,
        call: &CallOptions,
    ) -> Result<Pulled> {
        let location = Location::parse(location)?;
        let store = store::open(&location, Access::Read, &self.ctx).await?;
        let limits = self.ctx.options.limits;
        let platform = call
            .platform
            .as_ref()
            .or(self.ctx.options.platform.as_ref());
        let selected =
            select::select(store.as_ref(), &location.selector(), &limits, platform).await?;
        let what = format!("{location}");
        let config_descriptor = selected.parsed.config.clone();
        // The signature is looked up while the config downloads; both finish before a
        // byte of the module is read.
        let mut signed: Vec<Digest> = selected.index_digest.iter().cloned().collect();
        signed.push(selected.manifest.digest.clone());
        // Concurrent in-memory pulls of one image share one extraction (see
        // `shared_extraction`); joining before the config is read lets a call that will
        // wait ask for nothing of the module.
        let store_name = store.describe();
        let shared_key = shared_extraction::key(&store_name, &selected.manifest.digest, &limits);
        let turn = match destination {
            Destination::File(_) => None,
            Destination::Memory | Destination::Buffer(_) => {
                Some(self.ctx.extractions.join(&shared_key))
            }
        };
        let waiting = matches!(turn, Some(Turn::Wait(_)));
        // An image with one layer besides its config (the oci variant lists the config
        // as a layer too) holds its module there: that layer's request goes out beside
        // the config's, saving a round trip, unless a signature must be checked first
        // (then nothing of the module is asked for before it is) or the call waits.
        let signature_required = self.requirement(&location, call).trust().is_some();
        let mut content_layers = selected
            .parsed
            .layers
            .iter()
            .filter(|layer| layer.digest != config_descriptor.digest);
        let module_layer = match (content_layers.next(), content_layers.next()) {
            (Some(only), None) if !signature_required && !waiting => Some(only),
            _ => None,
        };
        // A failure of that request is the module's, which waiting calls share: kept
        // until the config and signature are done.
        let open_module_layer = async {
            Ok::<_, Error>(match module_layer {
                Some(layer) => {
                    verified::open_for_read_ahead(store.as_ref(), layer, call.progress.as_ref())
                        .await
                        .map(|stream| Some((layer.digest.clone(), stream)))
                }
                None => Ok(None),
            })
        };
        let (config, (), preopened) = tokio::try_join!(
            verified::read_small_blob(
                store.as_ref(),
                &config_descriptor,
                limits.max_metadata_bytes,
                "config",
            ),
            self.verify_signature(&location, store.as_ref(), &signed, call, false),
            open_module_layer,
        )?;
        // Store messages already name the store; others get the location.
        let in_context = |e: Error| {
            if e.message().starts_with(&store_name) {
                e
            } else {
                e.context(&what)
            }
        };
        let preopened = match preopened {
            Ok(preopened) => preopened,
            Err(e) => {
                if let Some(Turn::Lead(leading)) = turn {
                    leading.fail(&e);
                }
                return Err(in_context(e));
            }
        };
        let plan = formats::classify(
            &selected.parsed,
            &ConfigView::new(&config_descriptor, &config),
            &what,
        )?;
        tracing::debug!(location = %what, variant = %plan.variant, "pulling");

        let opener = BlobOpener {
            store: store.clone(),
            progress: call.progress.clone(),
            handle: tokio::runtime::Handle::current(),
            cancel: Default::default(),
            preopened: Arc::new(std::sync::Mutex::new(preopened)),
        };
        // A small module from local files is bounded work: many of them at once queue for
        // a few threads instead of taking one each.
        let bounded = store.is_local()
            && plan.source.layers().iter().map(|l| l.size).sum::<u64>() <= BOUNDED_LAYER_BYTES;
        let extract = || {
            let plan = plan.clone();
            let destination = destination.clone();
            let opener = opener.clone();
            let work = move |cancel| {
                let opener = BlobOpener { cancel, ..opener };
                extract::extract(&plan, &opener, &limits, &destination)
            };
            async move {
                if bounded {
                    run_bounded(work).await
                } else {
                    run_blocking(work).await
                }
            }
        };
        let extracted = match turn {
            // Every file pull writes its own file.
            None => extract().await,
            Some(turn) => {
                self.ctx
                    .extractions
                    .extract(
                        &shared_key,
                        turn,
                        &plan,
                        &destination,
                        call.progress.as_ref(),
                        extract,
                    )
                    .await
            }
        }
        .map_err(in_context)?;

        let module_layer = match &plan.source {
            ModuleSource::Raw(layer) => Some(layer.digest.clone()),
            ModuleSource::InTar { .. } => None,
        };
        let mut blobs = vec![(config_descriptor.clone(), BlobBody::Bytes(config.clone()))];
        for layer in &selected.parsed.layers {
            let body = match (&extracted.module, &module_layer) {
                _ if layer.digest == config_descriptor.digest => BlobBody::Bytes(config.clone()),
                (Some(module), Some(d)) if *d == layer.digest => BlobBody::Bytes(module.clone()),
                _ => BlobBody::InStore(store.clone()),
            };
            blobs.push((layer.clone(), body));
        }
        let info = ImageInfo {
            variant: plan.variant,
            module_digest: extracted.digest,
            module_size: extracted.size,
            manifest: selected.manifest.raw.bytes.clone(),
            manifest_media_type: selected.media_type.clone(),
            manifest_digest: selected.manifest.digest.clone(),
            index_digest: selected.index_digest.clone(),
            config,
            config_descriptor,
            runtime_config: plan.runtime_config.or(extracted.runtime_config),
            annotations: selected.parsed.annotations.clone(),
        };
        tracing::info!(location = %what, manifest = %info.manifest_digest, module = %info.module_digest, "pulled");
        Ok(Pulled {
            info,
            module: extracted.module,
            blobs,
        })
    }

    /// What `location` requires: the call's override, else the client's policy.
    pub fn requirement(&self, location: &Location, call: &CallOptions) -> signature::Requirement {
        match &call.verify {
            Some(requirement) => requirement.clone(),
            None => self
                .ctx
                .options
                .verification
                .requirement_for(location)
                .clone(),
        }
    }

    /// Verifies the image `digests` name (top-level first) when `location` requires it.
    /// With `remembered`, a digest this client verified under the same trust before is
    /// not looked at again (a module cache hit); a pull always looks, so a signature
    /// removed or replaced since is noticed.
    pub(crate) async fn verify_signature(
        &self,
        location: &Location,
        store: &dyn Store,
        digests: &[Digest],
        call: &CallOptions,
        remembered: bool,
    ) -> Result<()> {
        let requirement = self.requirement(location, call);
        let Some(trust) = requirement.trust() else {
            return Ok(());
        };
        if remembered && digests.iter().any(|d| self.ctx.verified.contains(d, trust)) {
            return Ok(());
        }
        if location.is_plain_module() {
            return Err(Error::new(
                ErrorKind::SignatureInvalid,
                format!("{location}: a bare module carries no signature, and the verification policy requires one"),
            ));
        }
        let shown = location.to_string();
        let found = signature::verify::verify_image(
            store,
            &shown,
            digests,
            trust,
            &self.ctx.options.limits,
        )
        .await?;
        tracing::info!(location = %shown, digest = %found.digest, signature = %found.source, signer = %found.signer, "signature verified");
        self.ctx.verified.insert(&found.digest, trust);
        for d in digests {
            self.ctx.verified.insert(d, trust);
        }
        Ok(())
    }

    /// Writes an image (built, or pulled from anywhere) to a location; returns the
    /// manifest digest.
    pub async fn push(
        &self,
        image: &WasmImage,
        location: &str,
        call: &CallOptions,
    ) -> Result<Digest> {
        deadline::within(
            &self.ctx.options,
            self.push_unbounded(image, location, call),
        )
        .await
    }

    async fn push_unbounded(
        &self,
        image: &WasmImage,
        location: &str,
        call: &CallOptions,
    ) -> Result<Digest> {
        let location = Location::parse(location)?;
        let selector = location.selector();
        if let Some(d) = &selector.digest {
            if *d != image.info.manifest_digest {
                return Err(Error::invalid_argument(format!(
                    "{location} pins digest {d}, but the image's manifest digest is {}",
                    image.info.manifest_digest
                )));
            }
        }
        let destination = store::open(&location, Access::Write, &self.ctx).await?;
        let destination = destination.as_ref();
        verified::all_of(image.blobs.iter().map(|(descriptor, body)| async move {
            match body {
                BlobBody::Bytes(data) => {
                    verified::put_bytes(
                        destination,
                        descriptor,
                        data.clone(),
                        call.progress.as_ref(),
                    )
                    .await
                }
                BlobBody::InStore(source) => {
                    verified::copy_blob(
                        source.as_ref(),
                        destination,
                        descriptor,
                        call.progress.as_ref(),
                    )
                    .await
                }
            }
        }))
        .await?;
        let raw = RawManifest {
            bytes: image.info.manifest.clone(),
            media_type: Some(image.info.manifest_media_type.clone()),
        };
        destination
            .put_manifest(&raw, &image.info.manifest_digest, selector.tag.as_deref())
            .await?;
        if let Some(key) = &call.sign_with {
            signature::sign::push_signature(
                destination,
                &signature::policy::scope_of(&location),
                &image.info.manifest_digest,
                key,
                &self.ctx.options.limits,
            )
            .await?;
        }
        destination.commit().await?;
        tracing::info!(location = %location, manifest = %image.info.manifest_digest, "pushed");
        Ok(image.info.manifest_digest.clone())
    }

    /// Copies an image, or a whole index with every manifest it lists, between any two
    /// locations. Digests are preserved: bytes are moved, never re-encoded. With
    /// `call.sign_with`, the copy is signed at the destination as `push` signs (beside
    /// any signature the copy carried along).
    pub async fn copy(
        &self,
        source: &str,
        destination: &str,
        call: &CallOptions,
    ) -> Result<Digest> {
        deadline::within(
            &self.ctx.options,
            self.copy_unbounded(source, destination, call),
        )
        .await
    }

    async fn copy_unbounded(
        &self,
        source: &str,
        destination: &str,
        call: &CallOptions,
    ) -> Result<Digest> {
        let source_location = Location::parse(source)?;
        let destination_location = Location::parse(destination)?;
        let src = store::open(&source_location, Access::Read, &self.ctx).await?;
        let dst = store::open(&destination_location, Access::Write, &self.ctx).await?;
        let limits = self.ctx.options.limits;
        let top = Copy::new(src.as_ref(), dst.as_ref(), &limits, call)
            .tree(source_location.selector())
            .await?;
        let dst_selector = destination_location.selector();
        if let Some(d) = &dst_selector.digest {
            if *d != top.digest {
                return Err(Error::invalid_argument(format!(
                    "{destination_location} pins digest {d}, but {source_location} has digest {}",
                    top.digest
                )));
            }
        }
        let tag = dst_selector.tag.or_else(|| source_location.selector().tag);
        dst.put_manifest(&top.raw, &top.digest, tag.as_deref())
            .await?;
        copy_signatures(src.as_ref(), dst.as_ref(), &top.digest, &limits, call).await?;
        if let Some(key) = &call.sign_with {
            signature::sign::push_signature(
                dst.as_ref(),
                &signature::policy::scope_of(&destination_location),
                &top.digest,
                key,
                &limits,
            )
            .await?;
        }
        dst.commit().await?;
        tracing::info!(source = %source_location, destination = %destination_location, manifest = %top.digest, "copied");
        Ok(top.digest)
    }

    /// The digest a reference names, without downloading the module (one request to a
    /// registry).
    pub async fn resolve(&self, location: &str, call: &CallOptions) -> Result<Resolved> {
        deadline::within(&self.ctx.options, self.resolve_unbounded(location, call)).await
    }

    async fn resolve_unbounded(&self, location: &str, _call: &CallOptions) -> Result<Resolved> {
        let location = Location::parse(location)?;
        let store = store::open(&location, Access::Read, &self.ctx).await?;
        let descriptor = store.resolve(&location.selector()).await?;
        Ok(Resolved {
            digest: descriptor.digest,
            media_type: descriptor.media_type,
            size: descriptor.size,
        })
    }
}

/// Copies what vouches for an image along with it, so a copy (to an `oci-archive:` for
/// an air-gapped transfer, say) stays verifiable: the cosign signature tag and the OCI
/// referrers (signatures, attestations). A destination that may lack a referrers API
/// also gets the referrers tag schema index.
async fn copy_signatures(
    src: &dyn Store,
    dst: &dyn Store,
    digest: &Digest,
    limits: &crate::limits::Limits,
    call: &CallOptions,
) -> Result<()> {
    use crate::location::Selector;
    let signature_tag = signature::find::signature_tag(digest);
    match Copy::new(src, dst, limits, call)
        .tree(Selector::tag(&signature_tag))
        .await
    {
        Ok(sig) => {
            dst.put_manifest(&sig.raw, &sig.digest, Some(&signature_tag))
                .await?
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let referrers = src.referrers(digest).await?;
    if referrers.is_empty() {
        return Ok(());
    }
    for referrer in &referrers {
        let mut fetched = Copy::new(src, dst, limits, call)
            .tree(Selector::digest(&referrer.digest))
            .await?;
        if fetched.raw.media_type.is_none() {
            fetched.raw.media_type = Some(referrer.media_type.clone());
        }
        dst.put_manifest(&fetched.raw, &fetched.digest, None)
            .await?;
    }
    let mut listed = dst.referrers(digest).await?;
    for referrer in referrers {
        if !listed.iter().any(|d| d.digest == referrer.digest) {
            listed.push(referrer);
        }
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": crate::media_types::OCI_INDEX,
        "manifests": listed,
    });
    let bytes = bytes::Bytes::from(serde_json::to_vec(&index).expect("json serializes"));
    let raw = RawManifest {
        bytes: bytes.clone(),
        media_type: Some(crate::media_types::OCI_INDEX.to_string()),
    };
    dst.put_manifest(
        &raw,
        &Digest::sha256_of(&bytes),
        Some(&crate::store::interface::referrers_tag(digest)),
    )
    .await
}

/// Shared so bindings can build a `CallOptions` in one line.
pub fn call_options(
    progress: Option<crate::Progress>,
    platform: Option<crate::Platform>,
) -> CallOptions {
    CallOptions {
        platform,
        progress,
        ..Default::default()
    }
}

/// Clients and images are shared between threads by every binding.
const _: () = {
    const fn check<T: Send + Sync>() {}
    check::<Client>();
    check::<WasmImage>();
    check::<Arc<dyn Store>>();
};
