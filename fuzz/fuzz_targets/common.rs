//! Shared by the targets. Inputs are text in NUL-separated parts, so that the seeds are
//! the repository's real files and calls, readable and editable by hand: no real input
//! holds a NUL (argv words, environment values and the files are C strings or text), so
//! the separator costs the fuzzer nothing it could meet in the field.

#![allow(dead_code)]

use std::collections::HashMap;

/// The input's parts, invalid UTF-8 replaced as the file readers do.
pub fn parts(data: &[u8]) -> Vec<String> {
    data.split(|b| *b == 0)
        .map(|part| String::from_utf8_lossy(part).into_owned())
        .collect()
}

/// A call as a process receives it: parts starting with `$` are `KEY=VALUE` environment
/// entries, `B/KEY=VALUE` parts are xenstore keys of the backend (for the backend target),
/// every other part is an argv word (without argv[0]).
#[derive(Default)]
pub struct Call {
    pub args: Vec<String>,
    pub env: HashMap<String, String>,
    pub keys: HashMap<String, String>,
}

impl Call {
    pub fn from_parts(parts: Vec<String>) -> Call {
        let mut call = Call::default();
        for part in parts {
            if let Some(entry) = part.strip_prefix('$') {
                let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
                call.env.insert(key.to_owned(), value.to_owned());
            } else if let Some(entry) = part.strip_prefix("B/") {
                let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
                call.keys.insert(key.to_owned(), value.to_owned());
            } else {
                call.args.push(part);
            }
        }
        call
    }

    pub fn env(&self, key: &str) -> Option<String> {
        self.env.get(key).cloned()
    }
}
