//! `index.json`: the tags of a layout and the images it lists, how selectors resolve
//! against it, and its edits, made under an exclusive lock of `oci-layout` so concurrent
//! writers (threads or processes) never lose each other's entries. It is edited as plain
//! JSON, so fields and entries we do not know are kept.

use crate::digest::{Descriptor, Digest};
use crate::error::{Error, Result};
use crate::files::{open_regular, read_bounded, real_dirs_within, write_atomic, Existing};
use crate::location::Selector;
use crate::manifest;
use crate::media_types::annotations;
use crate::store::RawManifest;
use bytes::Bytes;
use serde_json::Value;
use std::fs;

use super::members::{BLOBS_DIR, INDEX_FILE, OCI_LAYOUT_FILE};
use super::{Inner, MAX_JSON_BYTES};

impl Inner {
    /// `index.json` as JSON, checked to be an object whose `manifests` (if any) is a list.
    pub(super) fn read_index(&self) -> Result<Value> {
        let path = self.dir.join(INDEX_FILE);
        let data = read_bounded(&path, MAX_JSON_BYTES, &self.name).map_err(|e| {
            if e.kind() == crate::ErrorKind::NotFound {
                Error::invalid_format(format!(
                    "{}: {} is missing, so {} is not a complete OCI image layout",
                    self.name,
                    path.display(),
                    self.dir.display()
                ))
            } else {
                e
            }
        })?;
        let value: Value = serde_json::from_slice(&data).map_err(|e| {
            Error::invalid_format(format!(
                "{}: {} is not valid JSON: {e}",
                self.name,
                path.display()
            ))
        })?;
        let Some(object) = value.as_object() else {
            return Err(Error::invalid_format(format!(
                "{}: {} is not a JSON object",
                self.name,
                path.display()
            )));
        };
        match object.get("manifests") {
            None | Some(Value::Null) | Some(Value::Array(_)) => Ok(value),
            Some(_) => Err(Error::invalid_format(format!(
                "{}: \"manifests\" in {} is not a list",
                self.name,
                path.display()
            ))),
        }
    }

    pub(super) fn entries(&self) -> Result<Vec<Descriptor>> {
        let index = self.read_index()?;
        let Some(Value::Array(list)) = index.get("manifests") else {
            return Ok(Vec::new());
        };
        list.iter()
            .enumerate()
            .map(|(i, entry)| {
                serde_json::from_value::<Descriptor>(entry.clone()).map_err(|e| {
                    Error::invalid_format(format!(
                        "{}: entry {i} of index.json is not a valid descriptor: {e}",
                        self.name
                    ))
                })
            })
            .collect()
    }

    pub(super) fn resolve(&self, selector: &Selector) -> Result<Descriptor> {
        let entries = self.entries()?;
        if let Some(digest) = &selector.digest {
            if let Some(found) = entries.iter().find(|e| e.digest == *digest) {
                return Ok(found.clone());
            }
            return self.descriptor_from_blob(digest);
        }
        if let Some(tag) = &selector.tag {
            return entries
                .iter()
                .find(|e| e.annotation(annotations::REF_NAME) == Some(tag.as_str()))
                .cloned()
                .ok_or_else(|| {
                    Error::not_found(format!(
                        "{}: no image tagged {tag:?} (tags here: {})",
                        self.name,
                        tag_list(&entries)
                    ))
                });
        }
        match entries.len() {
            1 => Ok(entries[0].clone()),
            0 => Err(Error::not_found(format!(
                "{}: the layout holds no images",
                self.name
            ))),
            n => Err(Error::invalid_argument(format!(
                "{}: the layout holds {n} images; name one with :TAG or @DIGEST (tags here: {})",
                self.name,
                tag_list(&entries)
            ))),
        }
    }

    /// A descriptor for a manifest stored as a blob but not listed in `index.json` (an
    /// index's children, or an untagged image pinned by digest).
    pub(super) fn descriptor_from_blob(&self, digest: &Digest) -> Result<Descriptor> {
        let path = self.blob_path(digest);
        let data = read_bounded(&path, MAX_JSON_BYTES, &self.name).map_err(|e| {
            if e.kind() == crate::ErrorKind::NotFound {
                Error::not_found(format!(
                    "{}: no manifest {digest} (neither in index.json nor in blobs/)",
                    self.name
                ))
            } else {
                e
            }
        })?;
        let media_type =
            manifest::media_type_of(&data, None, &format!("{}: blob {digest}", self.name))?;
        Ok(Descriptor::new(
            media_type,
            digest.clone(),
            data.len() as u64,
        ))
    }

    pub(super) fn read_manifest(&self, selector: &Selector) -> Result<RawManifest> {
        let descriptor = self.resolve(selector)?;
        if descriptor.size > MAX_JSON_BYTES {
            return Err(Error::limit_exceeded(format!(
                "{}: manifest {} is {} bytes, more than the {MAX_JSON_BYTES} a manifest may have",
                self.name, descriptor.digest, descriptor.size
            )));
        }
        let data = read_bounded(
            &self.blob_path(&descriptor.digest),
            MAX_JSON_BYTES,
            &self.name,
        )
        .map_err(|e| {
            if e.kind() == crate::ErrorKind::NotFound {
                Error::not_found(format!(
                    "{}: index.json lists manifest {} but its blob is missing",
                    self.name, descriptor.digest
                ))
            } else {
                e
            }
        })?;
        // index.json names the manifest by digest and size: bytes that are not those
        // (a blob edited in place, an entry with a wrong size) are refused here, as blobs
        // are when streamed.
        descriptor.verify(&data, &format!("{}: manifest", self.name))?;
        Ok(RawManifest {
            bytes: Bytes::from(data),
            media_type: Some(descriptor.media_type),
        })
    }

    pub(super) fn write_manifest(
        &self,
        bytes: &[u8],
        descriptor: &Descriptor,
        tag: Option<&str>,
    ) -> Result<()> {
        let path = self.blob_path(&descriptor.digest);
        let present =
            fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && m.len() == descriptor.size);
        if !present {
            let algorithm = descriptor.digest.algorithm_name();
            real_dirs_within(&self.dir, &[BLOBS_DIR, algorithm], &self.name)?;
            write_atomic(&path, bytes, Existing::Replace)
                .map(drop)
                .map_err(|e| {
                    Error::io(
                        format!("{}: writing manifest {}", self.name, descriptor.digest),
                        e,
                    )
                })?;
        }
        let digest = descriptor.digest.to_string();
        let mut entry = descriptor.clone();
        if let Some(tag) = tag {
            entry.annotations = Some([(annotations::REF_NAME.to_string(), tag.to_string())].into());
        }
        let entry = serde_json::to_value(&entry).expect("descriptors serialise");
        self.update_index(|manifests| match tag {
            Some(tag) => {
                manifests.retain(|e| entry_tag(e) != Some(tag));
                manifests.push(entry);
            }
            None => {
                if !manifests
                    .iter()
                    .any(|e| e.get("digest").and_then(Value::as_str) == Some(&digest))
                {
                    manifests.push(entry);
                }
            }
        })
    }

    /// Read-modify-write of `index.json` under the layout's exclusive lock.
    pub(super) fn update_index(&self, edit: impl FnOnce(&mut Vec<Value>)) -> Result<()> {
        let lock_path = self.dir.join(OCI_LAYOUT_FILE);
        let lock = open_regular(&lock_path, &self.name)?;
        lock.lock()
            .map_err(|e| Error::io(format!("{}: locking {}", self.name, lock_path.display()), e))?;
        let mut index = self.read_index()?;
        let object = index
            .as_object_mut()
            .expect("read_index checks for an object");
        let manifests = object.entry("manifests").or_insert(Value::Null);
        if manifests.is_null() {
            *manifests = Value::Array(Vec::new());
        }
        edit(
            manifests
                .as_array_mut()
                .expect("read_index checks for a list"),
        );
        let bytes = serde_json::to_vec(&index).expect("JSON values serialise");
        write_atomic(&self.dir.join(INDEX_FILE), &bytes, Existing::Replace)
            .map_err(|e| Error::io(format!("{}: writing index.json", self.name), e))?;
        // Closing the file releases the lock, after the rename made the new index visible.
        drop(lock);
        Ok(())
    }
}

fn entry_tag(entry: &Value) -> Option<&str> {
    entry
        .get("annotations")?
        .get(annotations::REF_NAME)?
        .as_str()
}

pub(super) fn tag_list(entries: &[Descriptor]) -> String {
    let tags: Vec<&str> = entries
        .iter()
        .filter_map(|e| e.annotation(annotations::REF_NAME))
        .collect();
    let untagged = entries.len() - tags.len();
    let mut out = if tags.is_empty() {
        "none".to_string()
    } else {
        tags.join(", ")
    };
    if untagged > 0 {
        out.push_str(&format!("; {untagged} untagged"));
    }
    out
}
