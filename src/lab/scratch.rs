//! Scratch directories that remove themselves: the demo's, and every one the tests make.

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A directory of our own, removed with everything in it on drop (also while a panic
/// unwinds, so a failed test or an interrupted demo leaves nothing behind).
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    /// A new directory `vifkit-<pid>-<n>-<tag>` in the temp directory: the pid and a counter
    /// keep parallel test threads and concurrent test binaries apart.
    pub fn new(tag: &str) -> std::io::Result<Scratch> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "vifkit-{}-{}-{tag}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        Scratch::at(std::env::temp_dir().join(name))
    }

    /// The directory `path`, created (with its parents) if it does not exist; it is removed
    /// on drop either way, so it must be the caller's own.
    pub fn at(path: PathBuf) -> std::io::Result<Scratch> {
        std::fs::create_dir_all(&path)?;
        Ok(Scratch(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_scratch_is_new_and_gone_after_drop() {
        let a = Scratch::new("unit").unwrap();
        let b = Scratch::new("unit").unwrap();
        assert_ne!(a.path(), b.path());
        std::fs::write(a.join("file"), "x").unwrap();
        let path = a.path().to_owned();
        drop(a);
        assert!(!path.exists(), "{} left behind", path.display());
        assert!(b.is_dir());
    }
}
