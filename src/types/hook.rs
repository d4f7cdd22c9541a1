//! The hook scripts a plan runs last.

use std::path::PathBuf;

/// What hook scripts see (CONTRACT 4.7): exported to each hook as environment variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookRun {
    pub dir: PathBuf,
    pub vars: Vec<(&'static str, String)>,
}
