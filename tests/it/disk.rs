//! A full disk, as a user meets it: the message says "no space left on device" (not the
//! Parquet encoder's "transport error"), the exit code is non-zero and nothing half-written
//! stays. Needs a small tmpfs (root, or a machine that allows the mount); skipped with a
//! message elsewhere.

use crate::common::*;
use std::path::Path;
use std::process::Command;

/// A 256 KiB tmpfs at `dir`, unmounted when dropped; `None` where mounting is not allowed.
struct SmallDisk<'a>(&'a Path);

impl<'a> SmallDisk<'a> {
    fn mount(dir: &'a Path) -> Option<SmallDisk<'a>> {
        std::fs::create_dir_all(dir).ok()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
            .arg(dir)
            .output()
            .ok()?;
        mounted.status.success().then_some(SmallDisk(dir))
    }
}

impl Drop for SmallDisk<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0).output();
    }
}

#[test]
fn a_full_disk_says_so_and_leaves_nothing_half_written() {
    let scratch = scratch();
    let dir = scratch.path();
    let full = dir.join("full");
    let Some(_disk) = SmallDisk::mount(&full) else {
        eprintln!(
            "skipped: cannot mount a small tmpfs here (needs root); the full-disk case is untested on this machine"
        );
        return;
    };
    let output = bankml(
        dir,
        &[
            "generate",
            "--clients",
            "2000",
            "--months",
            "3",
            "--format",
            "parquet",
            "--out",
            full.to_str().unwrap(),
        ],
    );
    let said = text(&output);
    assert!(!output.status.success(), "{said}");
    assert!(said.contains("no space left on device"), "{said}");
    assert!(!said.contains("thrift"), "the encoder's words are replaced: {said}");
    let left: Vec<String> = std::fs::read_dir(&full)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "half-written files stay: {left:?}");
}
