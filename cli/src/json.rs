//! JSON exactly as the command line has always printed it (Python's `json.dump`): results
//! indented by two spaces, errors on one line with `", "` and `": "` between items, and
//! every character outside ASCII written as `\uXXXX`, so a script comparing bytes or
//! reading the output with a non-UTF-8 locale sees the same thing.

use std::io;

use serde_json::ser::{Formatter, PrettyFormatter};
use serde_json::Value;

/// A result: two-space indentation.
pub(crate) fn indented(value: &Value) -> String {
    write(value, PrettyFormatter::with_indent(b"  "))
}

/// An error object: one line.
pub(crate) fn compact(value: &Value) -> String {
    write(value, SpacedCompact)
}

fn write(value: &Value, formatter: impl Formatter) -> String {
    let mut bytes = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut bytes, formatter);
    serde::Serialize::serialize(value, &mut serializer).expect("a Value always serializes");
    ascii_only(&String::from_utf8(bytes).expect("serde_json writes UTF-8"))
}

/// Outside strings JSON text is ASCII, so every other character is inside a string and
/// may be escaped there.
fn ascii_only(text: &str) -> String {
    if text.is_ascii() {
        return text.to_string();
    }
    let mut escaped = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c.is_ascii() {
            escaped.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                escaped.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    escaped
}

/// One line, items separated by `", "` and keys from values by `": "`.
struct SpacedCompact;

/// What goes before an array item or an object key.
fn item_separator<W: ?Sized + io::Write>(w: &mut W, first: bool) -> io::Result<()> {
    if first {
        Ok(())
    } else {
        w.write_all(b", ")
    }
}

impl Formatter for SpacedCompact {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        item_separator(w, first)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        item_separator(w, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn results_are_indented_like_python_json_dump() {
        let value = json!({"a": 1, "b": [], "c": {}, "d": ["x", null], "e": {"f": true}});
        assert_eq!(
            indented(&value),
            "{\n  \"a\": 1,\n  \"b\": [],\n  \"c\": {},\n  \"d\": [\n    \"x\",\n    null\n  ],\n  \"e\": {\n    \"f\": true\n  }\n}"
        );
    }

    #[test]
    fn errors_are_one_line_with_spaces() {
        let value = json!({"error": {"kind": "NOT_FOUND", "status": null, "list": [1, 2]}});
        assert_eq!(
            compact(&value),
            r#"{"error": {"kind": "NOT_FOUND", "status": null, "list": [1, 2]}}"#
        );
    }

    #[test]
    fn non_ascii_is_escaped_and_keys_keep_their_order() {
        let value = json!({"z": "é€😀", "a": "\"quoted\"\n"});
        assert_eq!(
            compact(&value),
            r#"{"z": "\u00e9\u20ac\ud83d\ude00", "a": "\"quoted\"\n"}"#
        );
    }
}
