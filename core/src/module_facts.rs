//! Facts about a module read with a real Wasm parser: kind, imports, exports, and the
//! proxy-wasm ABI versions it declares (exports named `proxy_abi_version_*`).

use wasmparser::{Encoding, Parser, Payload};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleKind {
    CoreModule,
    Component,
}

impl ModuleKind {
    pub fn name(self) -> &'static str {
        match self {
            ModuleKind::CoreModule => "core-module",
            ModuleKind::Component => "component",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleFacts {
    pub kind: ModuleKind,
    pub size: u64,
    /// `module.name` of each import (core modules) or import names (components).
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    /// From exports such as `proxy_abi_version_0_2_1`, written as `v0.2.1`; the pre-0.2
    /// `proxy_abi_version_0_1_0` likewise.
    pub proxy_abi_versions: Vec<String>,
}

const CORE_MODULE_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
const COMPONENT_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

/// Checks the first bytes of a module: a core module or a component, nothing else.
pub fn check_wasm_header(head: &[u8], what: &str) -> Result<()> {
    if head.len() >= 8 && (head[..8] == CORE_MODULE_HEADER || head[..8] == COMPONENT_HEADER) {
        return Ok(());
    }
    let shown: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
    Err(Error::invalid_format(format!(
        "{what} is not WebAssembly: it starts with [{}], expected 00 61 73 6d 01 00 00 00 (module) or 00 61 73 6d 0d 00 01 00 (component)",
        shown.join(" ")
    )))
}

const PROXY_ABI_PREFIX: &str = "proxy_abi_version_";

fn abi_version(export: &str) -> Option<String> {
    let rest = export.strip_prefix(PROXY_ABI_PREFIX)?;
    let parts: Vec<&str> = rest.split('_').collect();
    if parts.is_empty()
        || !parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    Some(format!("v{}", parts.join(".")))
}

/// Parses the module's structure (not a full validation: that is the engine's job).
pub fn inspect(bytes: &[u8]) -> Result<ModuleFacts> {
    check_wasm_header(bytes, "the module")?;
    let bad = |e: wasmparser::BinaryReaderError| {
        Error::invalid_format(format!("the module is malformed Wasm: {e}"))
    };
    let mut facts = ModuleFacts {
        kind: ModuleKind::CoreModule,
        size: bytes.len() as u64,
        imports: Vec::new(),
        exports: Vec::new(),
        proxy_abi_versions: Vec::new(),
    };
    // Only the top level: nested modules of a component are its business.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(bad)? {
            Payload::Version { encoding, .. } => {
                if depth == 0 && encoding == Encoding::Component {
                    facts.kind = ModuleKind::Component;
                }
                depth += 1;
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ImportSection(reader) if depth == 1 => {
                for import in reader.into_imports() {
                    let import = import.map_err(bad)?;
                    facts
                        .imports
                        .push(format!("{}.{}", import.module, import.name));
                }
            }
            Payload::ExportSection(reader) if depth == 1 => {
                for export in reader {
                    let export = export.map_err(bad)?;
                    if let Some(v) = abi_version(export.name) {
                        facts.proxy_abi_versions.push(v);
                    }
                    facts.exports.push(export.name.to_string());
                }
            }
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    facts
                        .imports
                        .push(import.map_err(bad)?.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader {
                    facts
                        .exports
                        .push(export.map_err(bad)?.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_versions_from_export_names() {
        assert_eq!(
            abi_version("proxy_abi_version_0_2_1").as_deref(),
            Some("v0.2.1")
        );
        assert_eq!(
            abi_version("proxy_abi_version_0_1_0").as_deref(),
            Some("v0.1.0")
        );
        assert_eq!(abi_version("proxy_abi_version_x"), None);
        assert_eq!(abi_version("proxy_on_tick"), None);
    }

    #[test]
    fn minimal_module_and_garbage() {
        let facts = inspect(&[0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]).unwrap();
        assert_eq!(facts.kind, ModuleKind::CoreModule);
        assert!(facts.exports.is_empty());
        let err = inspect(b"\x7fELF\x02\x01\x01\x00").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidFormat);
        let err = inspect(&[0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0x07, 0x05]).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidFormat);
    }
}
