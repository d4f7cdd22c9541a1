//! A link as a plan step addresses it.

use std::fmt;

use crate::types::names::IfName;

/// A link as a step addresses it: by index (stable across a rename), shown by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkRef {
    pub index: u32,
    pub name: IfName,
}

impl fmt::Display for LinkRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.name.fmt(f)
    }
}
