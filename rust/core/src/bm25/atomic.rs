//! Atomic folder writes, with the rules of the Python side's `_internal/atomic.py`: a crash
//! mid-save never leaves a half-written folder where a loader looks.
//!
//! Everything is written into a fresh staging folder beside the target. A new (or empty) target
//! appears in one rename. An existing folder keeps its other entries: each written entry
//! replaces its namesake by rename, the `last` entry (the one loaders read first) at the end,
//! so until it lands a loader still sees the previous, complete set. On error the staging
//! folder is removed and the target is untouched.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// Runs `write(staging)` and moves what it wrote to `target` (see the module docs).
pub(super) fn write_folder(
    target: &Path,
    last: &str,
    write: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let target = absolute(target)?;
    if target.is_file() {
        return Err(Error::invalid_argument(
            "path",
            target.display(),
            "a folder to save into (this path is a file)",
        ));
    }
    let parent = target.parent().ok_or_else(|| {
        Error::invalid_argument("path", target.display(), "a folder below some parent")
    })?;
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, "parent folder", e))?;
    let staging = make_staging(parent, &target)?;
    let result = write(&staging).and_then(|()| publish(&staging, &target, last));
    if result.is_err() {
        // Best effort: the error that matters is the one being returned.
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| Error::io(path, "save path", e))
}

/// A new, empty folder `.{name}.saving-{unique}` in `parent`.
fn make_staging(parent: &Path, target: &Path) -> Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    loop {
        let unique = format!(
            "{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let staging = parent.join(format!(".{name}.saving-{unique}"));
        match std::fs::create_dir(&staging) {
            Ok(()) => return Ok(staging),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(&staging, "staging folder", e)),
        }
    }
}

/// Moves the staged entries into `target`.
fn publish(staging: &Path, target: &Path, last: &str) -> Result<()> {
    let io = |path: &Path, e| Error::io(path, "saved folder", e);
    if target.is_dir() {
        let empty = std::fs::read_dir(target)
            .map_err(|e| io(target, e))?
            .next()
            .is_none();
        if empty {
            std::fs::remove_dir(target).map_err(|e| io(target, e))?;
        }
    }
    if !target.exists() {
        return std::fs::rename(staging, target).map_err(|e| io(target, e));
    }
    let mut names: Vec<_> = std::fs::read_dir(staging)
        .map_err(|e| io(staging, e))?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .map_err(|e| io(staging, e))?;
    names.sort_by_key(|name| name == last);
    for name in names {
        let (source, destination) = (staging.join(&name), target.join(&name));
        // Only files are staged here; a folder in the way of one is an error, not replaced.
        std::fs::rename(&source, &destination).map_err(|e| io(&destination, e))?;
    }
    std::fs::remove_dir(staging).map_err(|e| io(staging, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_existing_and_failed_saves() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let write = |text: &'static str| {
            move |staging: &Path| {
                std::fs::write(staging.join("a.txt"), text).unwrap();
                std::fs::write(staging.join("config.json"), text).unwrap();
                Ok(())
            }
        };
        write_folder(&target, "config.json", write("one")).unwrap();
        assert_eq!(
            std::fs::read_to_string(target.join("a.txt")).unwrap(),
            "one"
        );

        // Into an existing folder: other entries stay, saved ones are replaced.
        std::fs::write(target.join("notes.md"), "mine").unwrap();
        write_folder(&target, "config.json", write("two")).unwrap();
        assert_eq!(
            std::fs::read_to_string(target.join("config.json")).unwrap(),
            "two"
        );
        assert_eq!(
            std::fs::read_to_string(target.join("notes.md")).unwrap(),
            "mine"
        );

        // A failing write leaves the target and no staging folder behind.
        let failed = write_folder(&target, "config.json", |staging| {
            std::fs::write(staging.join("a.txt"), "three").unwrap();
            Err(Error::invalid_argument("x", 1, "2"))
        });
        assert!(failed.is_err());
        assert_eq!(
            std::fs::read_to_string(target.join("a.txt")).unwrap(),
            "two"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out"]);

        // A file is not a folder to save into.
        let file = dir.path().join("out").join("a.txt");
        let e = write_folder(&file, "config.json", write("four")).unwrap_err();
        assert!(e.to_string().contains("`path`"), "{e}");
    }
}
