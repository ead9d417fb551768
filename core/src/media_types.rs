//! Every media type and annotation key the library reads or writes, in one place.

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

pub const OCI_IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_IMAGE_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_LAYER_NONDIST_TAR: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
pub const OCI_LAYER_NONDIST_TAR_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const OCI_LAYER_NONDIST_TAR_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
pub const DOCKER_LAYER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_FOREIGN_TAR_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// Solo.io Wasm Image specification, oci variant.
pub const SOLO_WASM_CONFIG: &str = "application/vnd.module.wasm.config.v1+json";
pub const SOLO_WASM_LAYER: &str = "application/vnd.module.wasm.content.layer.v1+wasm";

/// CNCF TAG Runtime Wasm OCI artifact.
pub const CNCF_WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
pub const WASM_LAYER: &str = "application/wasm";
pub const COMPONENT_LAYER: &str = "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm";

/// engineerd/wasm-to-oci.
pub const WASM_TO_OCI_CONFIG: &str = "application/vnd.wasm.config.v1+json";
pub const WASM_TO_OCI_LAYER: &str = "application/vnd.wasm.content.layer.v1+wasm";

/// wasmCloud's legacy actor artifacts.
pub const WASMCLOUD_CONFIG: &str = "application/vnd.wasmcloud.actor.archive.config";

/// Cosign: a signature manifest's layer (the signed simple-signing payload) and the
/// artifact type of a signature stored as an OCI 1.1 referrer.
pub const COSIGN_SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const COSIGN_SIGNATURE_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

/// Layer media types that hold a raw module (not a tar).
pub const RAW_WASM_LAYERS: &[&str] = &[
    SOLO_WASM_LAYER,
    WASM_LAYER,
    COMPONENT_LAYER,
    WASM_TO_OCI_LAYER,
];

/// Accept header for manifest requests: every manifest shape we can read.
pub const MANIFEST_ACCEPT: &[&str] = &[
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// How a tar layer is compressed, by its media type. `None` when the type is not a tar layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

pub fn tar_layer_compression(media_type: &str) -> Option<Compression> {
    match media_type {
        OCI_LAYER_TAR | OCI_LAYER_NONDIST_TAR | DOCKER_LAYER_TAR => Some(Compression::None),
        OCI_LAYER_TAR_GZIP
        | OCI_LAYER_NONDIST_TAR_GZIP
        | DOCKER_LAYER_TAR_GZIP
        | DOCKER_LAYER_FOREIGN_TAR_GZIP => Some(Compression::Gzip),
        OCI_LAYER_TAR_ZSTD | OCI_LAYER_NONDIST_TAR_ZSTD => Some(Compression::Zstd),
        _ => None,
    }
}

pub mod annotations {
    /// A cosign signature layer's signature over its payload, base64.
    pub const COSIGN_SIGNATURE: &str = "dev.cosignproject.cosign/signature";
    pub const TITLE: &str = "org.opencontainers.image.title";
    pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
    pub const CREATED: &str = "org.opencontainers.image.created";
    pub const VARIANT: &str = "module.wasm.image/variant";
    pub const RUNTIME_TYPE: &str = "module.wasm.runtime/type";
    pub const ABI_VERSION: &str = "module.wasm.runtime/abi_version";
    pub const DOCKER_REFERENCE_TYPE: &str = "vnd.docker.reference.type";
    pub const ATTESTATION_MANIFEST: &str = "attestation-manifest";
    /// A keyless cosign signature layer's signing certificate (PEM), its chain (PEM,
    /// intermediates then root) and its Rekor bundle (JSON).
    pub const COSIGN_CERTIFICATE: &str = "dev.sigstore.cosign/certificate";
    pub const COSIGN_CHAIN: &str = "dev.sigstore.cosign/chain";
    pub const COSIGN_BUNDLE: &str = "dev.sigstore.cosign/bundle";
}

/// File names inside a compat layer.
pub const COMPAT_MODULE_FILE: &str = "plugin.wasm";
pub const COMPAT_RUNTIME_CONFIG_FILE: &str = "runtime-config.json";
/// Titles wasme gives the oci variant's layers.
pub const SOLO_CONFIG_TITLE: &str = "runtime-config.json";
pub const SOLO_MODULE_TITLE: &str = "filter.wasm";
