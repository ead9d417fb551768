//! The defaults the C header and the Python stubs document are the core's
//! `ClientOptions::default()`: the bindings pass "unset" through, so their documentation
//! is the only place a default is written again, and this keeps it true.

use std::collections::BTreeMap;
use std::path::PathBuf;

use wasm_image::ClientOptions;

fn repo_file(path: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// "10,000" → 10000; "256 MiB" → bytes; "true" → 1.
fn value(text: &str) -> u64 {
    let text = text.trim().trim_end_matches('.');
    if text == "true" || text == "True" {
        return 1;
    }
    if text == "false" || text == "False" {
        return 0;
    }
    let (number, unit) = text.split_once(' ').unwrap_or((text, ""));
    let n: f64 = number
        .replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {text:?}"));
    let scale = match unit {
        "" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => panic!("unknown unit {other:?} in {text:?}"),
    };
    (n * scale).round() as u64
}

/// The documented default of each `wasm_image_client_options_set_*` in the header.
fn header_defaults() -> BTreeMap<String, String> {
    let header = repo_file("include/wasm_image.h");
    let mut out = BTreeMap::new();
    let mut comment = String::new();
    for line in header.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("/**") {
            comment.clear();
        }
        if trimmed.starts_with("/**") || trimmed.starts_with('*') {
            comment.push_str(trimmed.trim_start_matches("/**").trim_start_matches('*'));
            comment.push(' ');
            continue;
        }
        if let Some(rest) = trimmed.split("wasm_image_client_options_set_").nth(1) {
            let name = rest.split('(').next().unwrap().to_string();
            if let Some(after) = comment.split("Default").nth(1) {
                let after = after.trim_start_matches(':').trim();
                let end = after.find(['.', ';']).map_or(after.len(), |i| {
                    // A decimal comma or point ("10,000") continues the number.
                    if after[i + 1..].starts_with(char::is_numeric) {
                        after[i + 1..]
                            .find(['.', ';'])
                            .map_or(after.len(), |j| i + 1 + j)
                    } else {
                        i
                    }
                });
                out.insert(name, after[..end].to_string());
            }
            comment.clear();
        }
    }
    out
}

/// `name: … (default X…)` lines of the stubs' docstrings.
fn stub_defaults() -> BTreeMap<String, f64> {
    let stubs = repo_file("python/wasm_image/_native.pyi");
    let mut out = BTreeMap::new();
    for line in stubs.lines() {
        let line = line.trim();
        let (Some((name, rest)), true) = (line.split_once(": "), line.contains("(default ")) else {
            continue;
        };
        if name.contains(' ') {
            continue;
        }
        let text = &rest[rest.find("(default ").unwrap() + 9..];
        let text = text.split([',', ')']).next().unwrap();
        let number = match text {
            "True" => 1.0,
            "False" => 0.0,
            t => t
                .parse()
                .unwrap_or_else(|_| panic!("stub default {t:?} of {name}")),
        };
        out.insert(name.to_string(), number);
    }
    out
}

#[test]
fn header_documents_the_core_defaults() {
    let d = ClientOptions::default();
    let expected: BTreeMap<&str, u64> = [
        ("use_config_files", u64::from(d.use_config_files)),
        ("connect_timeout_ms", d.connect_timeout.as_millis() as u64),
        ("read_timeout_ms", d.read_timeout.as_millis() as u64),
        ("max_retries", u64::from(d.max_retries)),
        ("retry_base_delay_ms", d.retry_base_delay.as_millis() as u64),
        ("retry_max_delay_ms", d.retry_max_delay.as_millis() as u64),
        (
            "call_timeout_ms",
            d.call_timeout.map_or(0, |t| t.as_millis() as u64),
        ),
        ("max_module_bytes", d.limits.max_module_bytes),
        ("max_metadata_bytes", d.limits.max_metadata_bytes),
        ("max_decompressed_bytes", d.limits.max_decompressed_bytes),
        ("max_tar_entries", d.limits.max_tar_entries),
        ("max_index_depth", u64::from(d.limits.max_index_depth)),
        ("max_index_entries", d.limits.max_index_entries),
    ]
    .into_iter()
    .collect();
    let documented = header_defaults();
    for (name, want) in &expected {
        assert_eq!(
            documented.get(*name).map(|text| value(text)),
            Some(*want),
            "wasm_image_client_options_set_{name}: the header documents {:?}, the library's default is {want}",
            documented.get(*name)
        );
    }
}

#[test]
fn header_documents_the_user_agent() {
    let documented = header_defaults();
    let text = documented
        .get("user_agent")
        .expect("the user agent setter names its default");
    assert_eq!(
        text.trim_matches('`')
            .replace("VERSION", env!("CARGO_PKG_VERSION")),
        ClientOptions::default().user_agent
    );
}

#[test]
fn stubs_document_the_core_defaults() {
    let d = ClientOptions::default();
    let expected: BTreeMap<&str, f64> = [
        ("use_config_files", f64::from(u8::from(d.use_config_files))),
        ("connect_timeout", d.connect_timeout.as_secs_f64()),
        ("read_timeout", d.read_timeout.as_secs_f64()),
        ("retries", f64::from(d.max_retries)),
        ("retry_base_delay", d.retry_base_delay.as_secs_f64()),
        ("retry_max_delay", d.retry_max_delay.as_secs_f64()),
        ("max_module_bytes", d.limits.max_module_bytes as f64),
        ("max_metadata_bytes", d.limits.max_metadata_bytes as f64),
        (
            "max_decompressed_bytes",
            d.limits.max_decompressed_bytes as f64,
        ),
        ("max_tar_entries", d.limits.max_tar_entries as f64),
        ("max_index_depth", f64::from(d.limits.max_index_depth)),
        ("max_index_entries", d.limits.max_index_entries as f64),
    ]
    .into_iter()
    .collect();
    let documented = stub_defaults();
    for (name, want) in &expected {
        assert_eq!(
            documented.get(*name),
            Some(want),
            "_native.pyi documents {name} = {:?}, the library's default is {want}",
            documented.get(*name)
        );
    }
}
