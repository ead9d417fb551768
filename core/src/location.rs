//! Parsing of every location string the library accepts (see INTERFACES.md, "Locations").

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::{Error, Result};

pub const DOCKER_HUB: &str = "docker.io";
const DEFAULT_TAG: &str = "latest";

/// Which image within a store: by tag, by digest, or both (the digest then wins and the
/// tag only documents what was asked for).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector {
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Selector {
    pub fn is_empty(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    pub fn tag(tag: &str) -> Selector {
        Selector {
            tag: Some(tag.to_string()),
            digest: None,
        }
    }

    pub fn digest(digest: &crate::digest::Digest) -> Selector {
        Selector {
            tag: None,
            digest: Some(digest.clone()),
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// A repository in a registry, e.g. `127.0.0.1:5000` + `filters/add-header`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repository {
    /// `HOST[:PORT]` as written, with Docker Hub's aliases folded into `docker.io`.
    pub registry: String,
    pub name: String,
}

impl Repository {
    /// The host that actually serves the API (Docker Hub's differs from its name).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Registry {
        repository: Repository,
        selector: Selector,
    },
    Layout {
        dir: PathBuf,
        selector: Selector,
    },
    OciArchive {
        file: PathBuf,
        selector: Selector,
    },
    /// Read only. The reference, when given, is matched against the archive's `RepoTags`.
    DockerArchive {
        file: PathBuf,
        reference: Option<String>,
    },
    /// Read only: a bare module served over `https://` (or `http://`, allowed only for
    /// hosts on the client's insecure list; `store::plain_module` checks that).
    Url {
        url: String,
    },
    /// Read only: a bare module file, written `file:///PATH`.
    ModuleFile {
        path: PathBuf,
    },
}

impl Location {
    pub fn parse(s: &str) -> Result<Location> {
        s.parse()
    }

    pub fn selector(&self) -> Selector {
        match self {
            Location::Registry { selector, .. }
            | Location::Layout { selector, .. }
            | Location::OciArchive { selector, .. } => selector.clone(),
            Location::DockerArchive { .. } | Location::Url { .. } | Location::ModuleFile { .. } => {
                Selector::default()
            }
        }
    }

    /// The same location naming another image (used to write a copy under the source's tag).
    pub fn with_selector(&self, new: Selector) -> Location {
        let mut out = self.clone();
        match &mut out {
            Location::Registry { selector, .. }
            | Location::Layout { selector, .. }
            | Location::OciArchive { selector, .. } => *selector = new,
            Location::DockerArchive { .. } | Location::Url { .. } | Location::ModuleFile { .. } => {
            }
        }
        out
    }

    pub fn is_registry(&self) -> bool {
        matches!(self, Location::Registry { .. })
    }

    /// A bare module (`https://`, `http://`, `file://`), not an image: it has no manifest.
    pub fn is_plain_module(&self) -> bool {
        matches!(self, Location::Url { .. } | Location::ModuleFile { .. })
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Registry {
                repository,
                selector,
            } => write!(f, "{repository}{selector}"),
            Location::Layout { dir, selector } => write!(f, "oci:{}{selector}", dir.display()),
            Location::OciArchive { file, selector } => {
                write!(f, "oci-archive:{}{selector}", file.display())
            }
            Location::DockerArchive { file, reference } => {
                write!(f, "docker-archive:{}", file.display())?;
                if let Some(r) = reference {
                    write!(f, ":{r}")?;
                }
                Ok(())
            }
            // A query may carry a signature: messages and logs never show it.
            Location::Url { url } => match url.split_once('?') {
                Some((base, _)) => write!(f, "{base}?…"),
                None => f.write_str(url),
            },
            Location::ModuleFile { path } => {
                write!(f, "file://{}", percent_encode_path(&path.to_string_lossy()))
            }
        }
    }
}

impl FromStr for Location {
    type Err = Error;

    fn from_str(s: &str) -> Result<Location> {
        let fail = |why: String| Error::invalid_reference(format!("location {s:?}: {why}"));
        if s.is_empty() {
            return Err(fail("is empty".into()));
        }
        if s.chars().any(|c| c.is_control()) {
            return Err(fail("contains control characters".into()));
        }
        if let Some(rest) = s.strip_prefix("oci:").filter(|r| !r.starts_with("//")) {
            let (dir, selector) = split_path_selector(rest).map_err(fail)?;
            return Ok(Location::Layout { dir, selector });
        }
        if let Some(rest) = s.strip_prefix("oci-archive:") {
            let (file, selector) = split_path_selector(rest).map_err(fail)?;
            return Ok(Location::OciArchive { file, selector });
        }
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            let (file, reference) = match rest.split_once(':') {
                Some((file, reference)) => (file, Some(reference.to_string())),
                None => (rest, None),
            };
            if file.is_empty() {
                return Err(fail("the archive path is empty".into()));
            }
            if reference.as_deref() == Some("") {
                return Err(fail("the reference after the path is empty".into()));
            }
            return Ok(Location::DockerArchive {
                file: PathBuf::from(file),
                reference,
            });
        }
        if let Some(rest) = s.strip_prefix("file://") {
            return parse_file_url(rest).map_err(fail);
        }
        if s.starts_with("https://") || s.starts_with("http://") {
            return parse_module_url(s).map_err(fail);
        }
        // `oci://` is how Istio, Envoy Gateway, Helm and Flux name a registry; `oci:` (one
        // colon, no slashes) stays a layout directory.
        let rest = s
            .strip_prefix("docker://")
            .or_else(|| s.strip_prefix("oci://"))
            .unwrap_or(s);
        if let Some((scheme, _)) = rest.split_once("://") {
            return Err(fail(format!(
                "unknown transport {scheme:?}; use HOST/REPO[:TAG], docker://, oci://, oci:, oci-archive:, docker-archive:, https:// or file://"
            )));
        }
        let (repository, selector) = parse_registry_reference(rest).map_err(fail)?;
        Ok(Location::Registry {
            repository,
            selector,
        })
    }
}

/// A `NAME[:TAG][@DIGEST]` reference after Docker's normalisation, the way `docker load`
/// compares them: `wasm/x:v1` is `docker.io/wasm/x:v1`, `x` is `docker.io/library/x:latest`.
/// `None` for text that is no registry reference.
pub fn normalized_reference(s: &str) -> Option<(Repository, Selector)> {
    parse_registry_reference(s).ok()
}

/// `file:///PATH`: only an empty or `localhost` authority, so a path is never mistaken
/// for a host.
fn parse_file_url(rest: &str) -> std::result::Result<Location, String> {
    let path = match rest.split_once('/') {
        Some(("" | "localhost", _)) => &rest[rest.find('/').unwrap_or(0)..],
        _ => {
            return Err(
                "a file URL must be file:///ABSOLUTE/PATH (no host other than localhost)".into(),
            )
        }
    };
    if path == "/" {
        return Err("the file path is empty".into());
    }
    if path.contains('?') || path.contains('#') {
        return Err("a file URL takes no query or fragment".into());
    }
    let decoded = percent_decode(path)?;
    Ok(Location::ModuleFile {
        path: PathBuf::from(decoded),
    })
}

/// The inverse of `percent_decode` for what a location string may not hold as is
/// (control characters) or would read differently (`%`, `?`, `#`), so a printed
/// `file://` location parses back to the same path.
fn percent_encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if c.is_control() || matches!(c, '%' | '?' | '#') {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn percent_decode(s: &str) -> std::result::Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape at byte {i}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let decoded = String::from_utf8(out).map_err(|_| "the path is not UTF-8".to_string())?;
    if decoded.contains('\0') {
        return Err("the path contains a NUL byte".into());
    }
    Ok(decoded)
}

/// `https://HOST[:PORT]/PATH` (or `http://`): a host and a path are required; the URL is
/// kept as written (normalised by the URL parser), credentials in it are refused so they
/// never reach a log.
fn parse_module_url(s: &str) -> std::result::Result<Location, String> {
    let url = reqwest::Url::parse(s).map_err(|e| format!("not a valid URL: {e}"))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in the URL are refused; give them to the client instead".into());
    }
    if url.path().is_empty() || url.path() == "/" {
        return Err("the URL names no file (expected https://HOST/PATH)".into());
    }
    if url.fragment().is_some() {
        return Err("a module URL takes no fragment".into());
    }
    Ok(Location::Url {
        url: url.to_string(),
    })
}

fn split_path_selector(rest: &str) -> std::result::Result<(PathBuf, Selector), String> {
    let (path, selector) = if let Some((path, digest)) = rest.split_once('@') {
        let digest: Digest = digest.parse().map_err(|e: Error| e.message().to_string())?;
        (
            path,
            Selector {
                tag: None,
                digest: Some(digest),
            },
        )
    } else if let Some((path, tag)) = rest.split_once(':') {
        if tag.is_empty() || tag.chars().any(char::is_whitespace) || tag.len() > 255 {
            return Err(format!(
                "tag {tag:?} must be 1 to 255 characters without spaces"
            ));
        }
        (
            path,
            Selector {
                tag: Some(tag.to_string()),
                digest: None,
            },
        )
    } else {
        (rest, Selector::default())
    };
    if path.is_empty() {
        return Err("the directory or file path is empty".into());
    }
    Ok((PathBuf::from(path), selector))
}

fn parse_registry_reference(s: &str) -> std::result::Result<(Repository, Selector), String> {
    let (name_and_tag, digest) = match s.split_once('@') {
        Some((n, d)) => (
            n,
            Some(d.parse::<Digest>().map_err(|e| e.message().to_string())?),
        ),
        None => (s, None),
    };
    let (name, tag) = match name_and_tag.rfind(':') {
        Some(i) if !name_and_tag[i + 1..].contains('/') => {
            (&name_and_tag[..i], Some(&name_and_tag[i + 1..]))
        }
        _ => (name_and_tag, None),
    };
    if let Some(tag) = tag {
        validate_tag(tag)?;
    }
    if name.is_empty() {
        return Err("the repository name is empty".into());
    }
    let (registry, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.starts_with('[') =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DOCKER_HUB.to_string(), name.to_string()),
    };
    validate_host(&registry)?;
    let registry = match registry.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_string()
        }
        _ => registry,
    };
    let path = if registry == DOCKER_HUB && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    validate_repository(&path)?;
    let tag = match (&tag, &digest) {
        (None, None) => Some(DEFAULT_TAG.to_string()),
        _ => tag.map(String::from),
    };
    Ok((
        Repository {
            registry,
            name: path,
        },
        Selector { tag, digest },
    ))
}

fn validate_tag(tag: &str) -> std::result::Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag.chars().enumerate().all(|(i, c)| {
            c.is_ascii_alphanumeric() || c == '_' || (i > 0 && (c == '.' || c == '-'))
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag {tag:?} is invalid: 1 to 128 of [A-Za-z0-9_.-], not starting with '.' or '-'"
        ))
    }
}

fn validate_host(host: &str) -> std::result::Result<(), String> {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (inside, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("registry host {host:?} has an unclosed '['"))?;
        if inside.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!(
                "registry host {host:?} is not a valid IPv6 address"
            ));
        }
        (None, after.strip_prefix(':'))
    } else {
        match host.rsplit_once(':') {
            Some((n, p)) => (Some(n), Some(p)),
            None => (Some(host), None),
        }
    };
    if let Some(name) = name {
        let ok = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !ok {
            return Err(format!("registry host {host:?} is not a valid host name"));
        }
    }
    if let Some(port) = port {
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!(
                "registry port in {host:?} must be a number from 1 to 65535"
            ));
        }
    }
    Ok(())
}

fn validate_repository(path: &str) -> std::result::Result<(), String> {
    if path.len() > 255 {
        return Err("the repository name is longer than 255 characters".into());
    }
    for component in path.split('/') {
        let valid = !component.is_empty()
            && component
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && component
                .bytes()
                .last()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && component.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
            && !component.contains("..")
            && !component.contains("___")
            && !component.contains("._")
            && !component.contains("_.");
        if !valid {
            return Err(format!(
                "repository component {component:?} is invalid: lower-case letters, digits and single separators (. _ __ -) only"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    /// Found by the location fuzz target: a printed location parses back to itself, and a
    /// module URL's query never prints.
    #[test]
    fn module_locations_print_as_they_parse() {
        for text in [
            "file:///c0r/r/.%1Eepkg.",
            "file:///.",
            "file:///a%25b%3Fc%23d",
            "file:///plain/x.wasm",
        ] {
            let location = Location::parse(text).unwrap();
            let printed = location.to_string();
            assert_eq!(
                Location::parse(&printed).unwrap(),
                location,
                "{text} printed as {printed}"
            );
        }
        let signed = Location::parse("https://example.com/m.wasm?sig=secret").unwrap();
        assert_eq!(signed.to_string(), "https://example.com/m.wasm?…");
    }

    use super::*;
    use crate::ErrorKind;

    fn registry(s: &str) -> (String, String, Option<String>, Option<String>) {
        match Location::parse(s).unwrap() {
            Location::Registry {
                repository,
                selector,
            } => (
                repository.registry,
                repository.name,
                selector.tag,
                selector.digest.map(|d| d.to_string()),
            ),
            other => panic!("{s} parsed as {other:?}"),
        }
    }

    const D: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn registry_forms() {
        assert_eq!(
            registry("plugin"),
            (
                "docker.io".into(),
                "library/plugin".into(),
                Some("latest".into()),
                None
            )
        );
        assert_eq!(
            registry("org/plugin:v1"),
            (
                "docker.io".into(),
                "org/plugin".into(),
                Some("v1".into()),
                None
            )
        );
        assert_eq!(
            registry("docker://index.docker.io/plugin"),
            (
                "docker.io".into(),
                "library/plugin".into(),
                Some("latest".into()),
                None
            )
        );
        assert_eq!(
            registry("127.0.0.1:5000/filters/add-header:v1"),
            (
                "127.0.0.1:5000".into(),
                "filters/add-header".into(),
                Some("v1".into()),
                None
            )
        );
        assert_eq!(
            registry(&format!("localhost/x@{D}")),
            ("localhost".into(), "x".into(), None, Some(D.into()))
        );
        assert_eq!(
            registry(&format!("ghcr.io/a/b:t@{D}")),
            (
                "ghcr.io".into(),
                "a/b".into(),
                Some("t".into()),
                Some(D.into())
            )
        );
        assert_eq!(
            registry("[::1]:5000/x"),
            ("[::1]:5000".into(), "x".into(), Some("latest".into()), None)
        );
    }

    #[test]
    fn store_forms() {
        assert_eq!(
            Location::parse("oci:./store:add-header").unwrap(),
            Location::Layout {
                dir: "./store".into(),
                selector: Selector {
                    tag: Some("add-header".into()),
                    digest: None
                }
            }
        );
        assert!(matches!(
            Location::parse(&format!("oci:/s@{D}")).unwrap(),
            Location::Layout {
                selector: Selector {
                    digest: Some(_),
                    ..
                },
                ..
            }
        ));
        assert!(matches!(
            Location::parse("oci-archive:/tmp/a.tar:v1").unwrap(),
            Location::OciArchive { .. }
        ));
        assert_eq!(
            Location::parse("docker-archive:/tmp/d.tar:example.com/x:v1").unwrap(),
            Location::DockerArchive {
                file: "/tmp/d.tar".into(),
                reference: Some("example.com/x:v1".into())
            }
        );
    }

    #[test]
    fn bad_locations_name_the_offending_part() {
        for (bad, part) in [
            ("", "empty"),
            ("Upper/Case", "Upper"),
            ("host:99999/x", "port"),
            ("x:bad tag", "bad tag"),
            ("x@sha256:123", "64"),
            ("oci:", "empty"),
            ("oci:dir:", "tag"),
            ("ftp://x/y", "transport"),
            ("http://", "URL"),
            ("https://host", "names no file"),
            ("https://u:p@host/m.wasm", "credentials"),
            ("file://host/x.wasm", "file:///"),
            ("file:///", "empty"),
            ("file:///a%zz", "percent"),
            ("a//b", "\"\""),
            ("-bad-.io/x", "host"),
        ] {
            let err = Location::parse(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidReference, "{bad}");
            assert!(err.message().contains(part), "{bad}: {}", err.message());
        }
    }

    #[test]
    fn control_plane_forms() {
        assert_eq!(
            registry("oci://ghcr.io/acme/filter:v1"),
            (
                "ghcr.io".into(),
                "acme/filter".into(),
                Some("v1".into()),
                None
            )
        );
        assert_eq!(
            registry(&format!("oci://127.0.0.1:5000/a/b@{D}")),
            ("127.0.0.1:5000".into(), "a/b".into(), None, Some(D.into()))
        );
        assert_eq!(
            Location::parse("https://example.com/p/filter.wasm").unwrap(),
            Location::Url {
                url: "https://example.com/p/filter.wasm".into()
            }
        );
        assert!(Location::parse("http://127.0.0.1:8080/m.wasm")
            .unwrap()
            .is_plain_module());
        assert_eq!(
            Location::parse("file:///srv/my%20filter.wasm").unwrap(),
            Location::ModuleFile {
                path: "/srv/my filter.wasm".into()
            }
        );
        assert_eq!(
            Location::parse("file://localhost/srv/f.wasm").unwrap(),
            Location::ModuleFile {
                path: "/srv/f.wasm".into()
            }
        );
        assert_eq!(
            Location::parse("https://h.example/m.wasm?X-Signature=secret")
                .unwrap()
                .to_string(),
            "https://h.example/m.wasm?…"
        );
        // One colon and no slashes keeps meaning a layout directory.
        assert!(matches!(
            Location::parse("oci:store:v1").unwrap(),
            Location::Layout { .. }
        ));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "127.0.0.1:5000/a/b:v1",
            "oci:/x:t",
            "oci-archive:/x.tar:t",
            "docker.io/library/p:latest",
            "https://example.com/m.wasm",
            "file:///srv/f.wasm",
        ] {
            assert_eq!(Location::parse(s).unwrap().to_string(), s);
        }
    }
}
