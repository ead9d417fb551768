//! PEM as cosign and Go's `encoding/pem` write it: one or more `-----BEGIN LABEL-----`
//! blocks of base64, any line width, text between blocks ignored. Headers
//! (`Proc-Type: …`, the old encrypted-PEM form) are refused, since nothing cosign writes
//! has them.

use base64::Engine as _;

/// One decoded block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Block {
    pub(crate) label: String,
    pub(crate) der: Vec<u8>,
}

/// Every block in `text`, in order; empty when there is none. The error says what is
/// malformed, for the caller to put in its own error kind.
pub(crate) fn parse_all(text: &[u8]) -> Result<Vec<Block>, String> {
    let text = std::str::from_utf8(text).map_err(|_| "PEM text is not UTF-8".to_string())?;
    let mut blocks = Vec::new();
    let mut open: Option<(&str, String)> = None;
    for line in text.lines() {
        let line = line.trim();
        match open.as_mut() {
            None => {
                if let Some(label) = boundary(line, "BEGIN") {
                    open = Some((label, String::new()));
                }
            }
            Some((label, base64_text)) => {
                if let Some(end) = boundary(line, "END") {
                    if end != *label {
                        return Err(format!("PEM block BEGIN {label} ends with END {end}"));
                    }
                    let der = base64::engine::general_purpose::STANDARD
                        .decode(base64_text.as_bytes())
                        .map_err(|e| format!("PEM block {label} is not valid base64: {e}"))?;
                    blocks.push(Block {
                        label: label.to_string(),
                        der,
                    });
                    open = None;
                } else if line.contains(':') {
                    return Err(format!(
                        "PEM block {label} has headers, which are not supported"
                    ));
                } else {
                    base64_text.push_str(line);
                }
            }
        }
    }
    match open {
        Some((label, _)) => Err(format!("PEM block {label} has no END line")),
        None => Ok(blocks),
    }
}

/// The DER of every block in `text`, all labelled `label`, at least one.
pub(crate) fn parse_labelled(text: &[u8], label: &str) -> Result<Vec<Vec<u8>>, String> {
    let blocks = parse_all(text)?;
    if blocks.is_empty() {
        return Err(format!("no PEM {label} block found"));
    }
    blocks
        .into_iter()
        .map(|block| {
            if block.label == label {
                Ok(block.der)
            } else {
                Err(format!(
                    "expected PEM {label} blocks, found {}",
                    crate::error::quoted(&block.label, crate::error::QUOTED_CHARS)
                ))
            }
        })
        .collect()
}

/// The label of a `-----BEGIN LABEL-----` (or END) line.
fn boundary<'a>(line: &'a str, which: &str) -> Option<&'a str> {
    line.strip_prefix("-----")?
        .strip_prefix(which)?
        .strip_prefix(' ')?
        .strip_suffix("-----")
}

/// `der` as one PEM block, 64 base64 characters a line, as Go writes it.
#[cfg(any(test, feature = "testkit"))]
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    let base64_text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in base64_text.as_bytes().chunks(64) {
        // Base64 is ASCII, so every chunk is a whole string.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip_and_text_between_them_is_ignored() {
        let first = encode("CERTIFICATE", &[1u8; 100]);
        let second = encode("PUBLIC KEY", b"key");
        let text = format!(
            "preamble\n{first}between\r\n{}",
            second.replace('\n', "\r\n")
        );
        let blocks = parse_all(text.as_bytes()).unwrap();
        assert_eq!(
            blocks,
            vec![
                Block {
                    label: "CERTIFICATE".into(),
                    der: vec![1u8; 100]
                },
                Block {
                    label: "PUBLIC KEY".into(),
                    der: b"key".to_vec()
                },
            ]
        );
        assert_eq!(parse_all(b"no pem here").unwrap(), vec![]);
    }

    #[test]
    fn malformed_blocks_are_refused() {
        let cases: [&[u8]; 5] = [
            b"-----BEGIN A-----\nAAAA\n",
            b"-----BEGIN A-----\nAAAA\n-----END B-----\n",
            b"-----BEGIN A-----\n!!!!\n-----END A-----\n",
            b"-----BEGIN A-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END A-----\n",
            b"\xff\xfe",
        ];
        for case in cases {
            assert!(
                parse_all(case).is_err(),
                "{:?}",
                String::from_utf8_lossy(case)
            );
        }
    }
}
