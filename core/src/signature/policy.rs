//! Which images must be signed, and by whom: a verification policy maps location
//! patterns (`ghcr.io/acme/*`, `oci:*`) to the trust a signature must satisfy. A control
//! plane sets it once in the client options; a call may override it.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::location::Location;

use super::keyless::KeylessTrust;
use super::keys::PublicKey;

/// What a valid signature must satisfy: made by one of `keys`, or keylessly by a
/// certificate one of the `keyless` trusts accepts (Fulcio root, Rekor key, identity);
/// and, when `repository` is set, made for exactly that repository (the payload's
/// `docker-reference`).
#[derive(Clone, Default)]
pub struct Trust {
    keys: Vec<PublicKey>,
    keyless: Vec<Arc<KeylessTrust>>,
    repository: Option<String>,
}

/// Keyless trusts compare by identity: two built separately are different trusts.
impl PartialEq for Trust {
    fn eq(&self, other: &Trust) -> bool {
        self.keys == other.keys
            && self.repository == other.repository
            && self.keyless.len() == other.keyless.len()
            && self
                .keyless
                .iter()
                .zip(&other.keyless)
                .all(|(a, b)| Arc::ptr_eq(a, b))
    }
}

impl Eq for Trust {}

impl Trust {
    /// Trusts signatures made by any of `keys` (at least one).
    pub fn keys(keys: Vec<PublicKey>) -> Result<Trust> {
        Trust::new(keys, Vec::new())
    }

    /// Trusts keyless signatures (certificate, chain and transparency-log bundle in the
    /// layer's annotations) that one of `keyless` accepts, checked offline.
    pub fn keyless(keyless: Vec<KeylessTrust>) -> Result<Trust> {
        Trust::new(Vec::new(), keyless)
    }

    /// Keys and keyless trusts together; a signature satisfying either will do.
    pub fn new(keys: Vec<PublicKey>, keyless: Vec<KeylessTrust>) -> Result<Trust> {
        if keys.is_empty() && keyless.is_empty() {
            return Err(Error::invalid_argument(
                "a verification trust needs at least one public key or keyless trust",
            ));
        }
        Ok(Trust {
            keys,
            keyless: keyless.into_iter().map(Arc::new).collect(),
            repository: None,
        })
    }

    pub fn keyless_trusts(&self) -> &[Arc<KeylessTrust>] {
        &self.keyless
    }

    /// Also requires the signed payload to name `repository` (`HOST/NAME`, no tag), so a
    /// signature made for another repository is refused.
    pub fn with_repository(mut self, repository: impl Into<String>) -> Trust {
        self.repository = Some(repository.into());
        self
    }

    pub fn public_keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// One trust that accepts what either accepts: the keys and keyless trusts of both.
    /// Their repository restrictions must agree, since one signature names one.
    pub fn combined_with(&self, other: &Trust) -> Result<Trust> {
        if self.repository != other.repository {
            return Err(Error::invalid_argument(format!(
                "two trusts for one pattern name different repositories ({} and {}); give each its own pattern",
                self.repository.as_deref().unwrap_or("any"),
                other.repository.as_deref().unwrap_or("any"),
            )));
        }
        let mut keys = self.keys.clone();
        for key in &other.keys {
            if !keys.contains(key) {
                keys.push(key.clone());
            }
        }
        Ok(Trust {
            keys,
            keyless: self.keyless.iter().chain(&other.keyless).cloned().collect(),
            repository: self.repository.clone(),
        })
    }

    pub fn repository(&self) -> Option<&str> {
        self.repository.as_deref()
    }
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trust")
            .field("keys", &self.keys)
            .field("keyless", &self.keyless.len())
            .field("repository", &self.repository)
            .finish()
    }
}

/// What one location requires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// No signature is checked.
    None,
    /// A valid signature under this trust, or `SIGNATURE_INVALID`.
    Signed(Arc<Trust>),
}

impl Requirement {
    pub fn signed(trust: Trust) -> Requirement {
        Requirement::Signed(Arc::new(trust))
    }

    pub fn trust(&self) -> Option<&Arc<Trust>> {
        match self {
            Requirement::None => None,
            Requirement::Signed(trust) => Some(trust),
        }
    }

    /// This requirement with `trust` added: a signature either trust accepts will do.
    /// Added to no requirement (an exemption), `trust` alone.
    pub fn adding(&self, trust: Trust) -> Result<Requirement> {
        Ok(match self {
            Requirement::None => Requirement::signed(trust),
            Requirement::Signed(existing) => Requirement::signed(existing.combined_with(&trust)?),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    pattern: String,
    requirement: Requirement,
}

/// Location patterns and what each requires. The most specific matching pattern (the
/// most characters besides `*`) decides; between equally specific ones, the first
/// added. Locations no pattern matches need no signature (the default, empty policy).
/// Requirements added for one pattern add up (keys given in one call, a keyless trust in
/// another: a signature either accepts will do); an exemption and a requirement for one
/// pattern do not mix, and the later one stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerificationPolicy {
    rules: Vec<Rule>,
}

impl VerificationPolicy {
    pub fn new() -> VerificationPolicy {
        VerificationPolicy::default()
    }

    /// Requires a signature for locations matching `pattern`. Patterns are written as
    /// [`scope_of`] shows locations: `HOST[:PORT]/NAME` for registries (no tag or
    /// digest), `oci:DIR`, `oci-archive:FILE`, `docker-archive:FILE`, `https://…`,
    /// `file://…`; `*` stands for any run of characters, `/` included.
    pub fn add(&mut self, pattern: &str, requirement: Requirement) -> Result<()> {
        if pattern.is_empty() || pattern.chars().any(|c| c.is_control()) {
            return Err(Error::invalid_argument(format!(
                "verification policy pattern {pattern:?}: must be non-empty, without control characters"
            )));
        }
        if let Some(rule) = self.rules.iter_mut().find(|r| r.pattern == pattern) {
            rule.requirement = match requirement {
                Requirement::Signed(added) => {
                    rule.requirement.adding(Arc::unwrap_or_clone(added))?
                }
                Requirement::None => Requirement::None,
            };
            return Ok(());
        }
        self.rules.push(Rule {
            pattern: pattern.to_string(),
            requirement,
        });
        Ok(())
    }

    pub fn require(&mut self, pattern: &str, trust: Trust) -> Result<()> {
        self.add(pattern, Requirement::signed(trust))
    }

    /// Exempts locations matching `pattern` (say `oci:*`) from a broader rule.
    pub fn exempt(&mut self, pattern: &str) -> Result<()> {
        self.add(pattern, Requirement::None)
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// What `location` requires under this policy.
    pub fn requirement_for(&self, location: &Location) -> &Requirement {
        let scope = scope_of(location);
        let mut best: Option<(&Rule, usize)> = None;
        for rule in &self.rules {
            if !glob_matches(&rule.pattern, &scope) {
                continue;
            }
            let specificity = rule.pattern.chars().filter(|c| *c != '*').count();
            if best.is_none_or(|(_, s)| specificity > s) {
                best = Some((rule, specificity));
            }
        }
        best.map_or(&Requirement::None, |(rule, _)| &rule.requirement)
    }
}

/// How a location is named for policy patterns: its store, without tag or digest.
pub fn scope_of(location: &Location) -> String {
    match location {
        Location::Registry { repository, .. } => repository.to_string(),
        Location::Layout { dir, .. } => format!("oci:{}", dir.display()),
        Location::OciArchive { file, .. } => format!("oci-archive:{}", file.display()),
        Location::DockerArchive { file, .. } => format!("docker-archive:{}", file.display()),
        Location::Url { .. } | Location::ModuleFile { .. } => {
            let shown = location.to_string();
            shown.split('?').next().unwrap_or_default().to_string()
        }
    }
}

/// `*` matches any run of characters (none included); everything else matches itself.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trust() -> Trust {
        trust_of_key(3)
    }

    fn other_trust() -> Trust {
        trust_of_key(5)
    }

    /// A trust in the one P-256 key made from `seed`.
    fn trust_of_key(seed: u8) -> Trust {
        let key = super::super::keys::SigningKey::from_pkcs8_der(
            p256::pkcs8::EncodePrivateKey::to_pkcs8_der(
                &p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap(),
            )
            .unwrap()
            .as_bytes(),
        )
        .unwrap();
        Trust::keys(vec![key.public_key()]).unwrap()
    }

    #[test]
    fn globs() {
        assert!(glob_matches("ghcr.io/acme/*", "ghcr.io/acme/filters/x"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("a*b*c", "aXXbYc"));
        assert!(!glob_matches("ghcr.io/acme/*", "ghcr.io/acmeco/x"));
        assert!(!glob_matches("a*b", "aXbY"));
        assert!(glob_matches("oci:*", "oci:/tmp/store"));
    }

    #[test]
    fn the_most_specific_rule_decides() {
        let mut policy = VerificationPolicy::new();
        assert_eq!(
            policy.requirement_for(&Location::parse("ghcr.io/acme/x:v1").unwrap()),
            &Requirement::None,
            "empty policy requires nothing"
        );
        policy.require("*", trust()).unwrap();
        policy.exempt("oci:*").unwrap();
        policy.exempt("ghcr.io/acme/public/*").unwrap();
        let signed = |s: &str| {
            policy
                .requirement_for(&Location::parse(s).unwrap())
                .trust()
                .is_some()
        };
        assert!(signed("ghcr.io/acme/x:v1"));
        assert!(signed("oci-archive:/tmp/a.tar"));
        assert!(!signed("oci:/tmp/store:v1"));
        assert!(!signed("ghcr.io/acme/public/x@sha256:0000000000000000000000000000000000000000000000000000000000000000"));
        assert!(policy.add("", Requirement::None).is_err());
        assert!(Trust::keys(Vec::new()).is_err());
    }

    #[test]
    fn requirements_for_one_pattern_add_up() {
        let location = Location::parse("ghcr.io/acme/x:v1").unwrap();
        let mut policy = VerificationPolicy::new();
        policy.require("ghcr.io/acme/*", trust()).unwrap();
        policy.require("ghcr.io/acme/*", other_trust()).unwrap();
        // The same key twice is one key.
        policy.require("ghcr.io/acme/*", trust()).unwrap();
        let keys = policy
            .requirement_for(&location)
            .trust()
            .unwrap()
            .public_keys();
        assert_eq!(keys.len(), 2);
        assert!(keys.contains(&trust().public_keys()[0]));
        assert!(keys.contains(&other_trust().public_keys()[0]));
        assert_eq!(policy.rules.len(), 1);

        // One signature names one repository: two different ones cannot be merged.
        let err = policy
            .require(
                "ghcr.io/acme/*",
                other_trust().with_repository("ghcr.io/acme/y"),
            )
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument);
        assert_eq!(
            policy
                .requirement_for(&location)
                .trust()
                .unwrap()
                .public_keys()
                .len(),
            2,
            "a refused rule changes nothing"
        );
    }

    #[test]
    fn an_exemption_and_a_requirement_for_one_pattern_the_later_stands() {
        let location = Location::parse("oci:/tmp/store:v1").unwrap();
        let mut policy = VerificationPolicy::new();
        policy.require("oci:*", trust()).unwrap();
        policy.exempt("oci:*").unwrap();
        assert_eq!(policy.requirement_for(&location), &Requirement::None);
        policy.require("oci:*", other_trust()).unwrap();
        let required = policy.requirement_for(&location).trust().unwrap();
        assert_eq!(required.public_keys(), other_trust().public_keys());
    }

    #[test]
    fn adding_to_a_requirement() {
        assert_eq!(
            Requirement::None.adding(trust()).unwrap(),
            Requirement::signed(trust())
        );
        let both = Requirement::signed(trust()).adding(other_trust()).unwrap();
        assert_eq!(both.trust().unwrap().public_keys().len(), 2);
        assert!(Requirement::signed(trust().with_repository("a/b"))
            .adding(trust())
            .is_err());
    }
}
