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
        // A default in words (a directory) is not compared; a name the tests expect
        // with an unreadable number shows up as missing.
        let number = match text {
            "True" => 1.0,
            "False" => 0.0,
            t => match t.parse() {
                Ok(n) => n,
                Err(_) => continue,
            },
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
    let cache = wasm_image::CacheOptions::default();
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
        ("tag_ttl", cache.tag_ttl.as_secs_f64()),
        ("stale_on_error", f64::from(u8::from(cache.stale_on_error))),
        ("verify", f64::from(u8::from(cache.verify_on_hit))),
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

/// The comment block (`//` lines) that documents a Go name in `go/options.go`.
fn go_comment(source: &str, name: &str) -> String {
    let lines: Vec<&str> = source.lines().map(str::trim).collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with(&format!("// {name} ")))
        .unwrap_or_else(|| panic!("go/options.go documents no {name}"));
    lines[start..]
        .iter()
        .take_while(|l| l.starts_with("//"))
        .map(|l| l.trim_start_matches("//").trim())
        .collect::<Vec<_>>()
        .join(" ")
}

fn human_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}

fn human_bytes(n: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if n.is_multiple_of(1024 * MIB) {
        format!("{} GiB", n / (1024 * MIB))
    } else if n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else {
        n.to_string()
    }
}

fn human_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[test]
fn go_package_documents_the_core_defaults() {
    let source = repo_file("go/options.go");
    let d = ClientOptions::default();
    let l = &d.limits;
    let expected: Vec<(&str, Vec<String>)> = vec![
        (
            "WithConfigFiles",
            vec![format!("Default: {}", d.use_config_files)],
        ),
        (
            "WithConnectTimeout",
            vec![format!("Default {}", human_duration(d.connect_timeout))],
        ),
        (
            "WithReadTimeout",
            vec![format!("Default {}", human_duration(d.read_timeout))],
        ),
        ("WithRetries", vec![format!("Default {}", d.max_retries)]),
        (
            "WithCallTimeout",
            vec![format!(
                "Default {}",
                d.call_timeout.map_or("0".to_string(), human_duration)
            )],
        ),
        (
            "WithRetryDelays",
            vec![
                format!("default {}", human_duration(d.retry_base_delay)),
                format!("default {}", human_duration(d.retry_max_delay)),
            ],
        ),
        (
            "MaxModuleBytes",
            vec![format!("Default {}", human_bytes(l.max_module_bytes))],
        ),
        (
            "MaxMetadataBytes",
            vec![format!("Default {}", human_bytes(l.max_metadata_bytes))],
        ),
        (
            "MaxDecompressedBytes",
            vec![format!("Default {}", human_bytes(l.max_decompressed_bytes))],
        ),
        (
            "MaxTarEntries",
            vec![format!("Default {}", human_count(l.max_tar_entries))],
        ),
        (
            "MaxIndexDepth",
            vec![format!("Default {}", l.max_index_depth)],
        ),
        (
            "MaxIndexEntries",
            vec![format!("Default {}", human_count(l.max_index_entries))],
        ),
    ];
    for (name, phrases) in expected {
        let comment = go_comment(&source, name);
        for phrase in phrases {
            assert!(
                comment.contains(&phrase),
                "go/options.go: the comment of {name} should say {phrase:?}: {comment}"
            );
        }
    }
}
