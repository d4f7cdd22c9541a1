//! The client's typed errors, so callers test errno names instead of
//! matching message text.

use std::fmt;

use super::path::PathError;

#[derive(Debug)]
pub enum XsError {
    /// The server answered with an `ERROR` message.
    Remote {
        op: &'static str,
        path: String,
        errno: String,
    },
    /// Refused before sending: the server would have said `EINVAL`.
    InvalidPath {
        op: &'static str,
        path: String,
        reason: PathError,
    },
    /// Refused before sending: the request does not fit one payload.
    TooBig {
        op: &'static str,
        path: String,
        len: usize,
    },
}

impl XsError {
    /// The xenstore error name (`ENOENT`, `EAGAIN`, ...) of a server error;
    /// `EINVAL` or `E2BIG` for requests refused locally, as the server
    /// would have answered.
    pub fn errno(&self) -> &str {
        match self {
            XsError::Remote { errno, .. } => errno,
            XsError::InvalidPath { .. } => "EINVAL",
            XsError::TooBig { .. } => "E2BIG",
        }
    }

    pub fn is_enoent(&self) -> bool {
        self.errno() == "ENOENT"
    }

    pub fn is_eagain(&self) -> bool {
        self.errno() == "EAGAIN"
    }
}

impl fmt::Display for XsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (op, path) = match self {
            XsError::Remote { op, path, .. }
            | XsError::InvalidPath { op, path, .. }
            | XsError::TooBig { op, path, .. } => (op, path),
        };
        match path.is_empty() {
            true => write!(f, "{op}: ")?,
            false => write!(f, "{op} {path}: ")?,
        }
        match self {
            XsError::Remote { errno, .. } => write!(f, "{errno}"),
            XsError::InvalidPath { reason, .. } => write!(f, "{reason}"),
            XsError::TooBig { len, .. } => write!(
                f,
                "request of {len} bytes exceeds the {}-byte payload limit",
                super::wire::XENSTORE_PAYLOAD_MAX
            ),
        }
    }
}

impl std::error::Error for XsError {}

/// True when `err`, or an error it wraps, is a server `ENOENT`.
pub fn is_enoent(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|e| e.downcast_ref::<XsError>().is_some_and(XsError::is_enoent))
}

/// True when `err`, or an error it wraps, is a server `EAGAIN`.
pub fn is_eagain(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|e| e.downcast_ref::<XsError>().is_some_and(XsError::is_eagain))
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn display_names_verb_and_path() {
        let e = XsError::Remote {
            op: "read",
            path: "backend/vif/3/0/bridge".into(),
            errno: "ENOENT".into(),
        };
        assert_eq!(e.to_string(), "read backend/vif/3/0/bridge: ENOENT");
        let e = XsError::Remote {
            op: "start transaction",
            path: String::new(),
            errno: "EBUSY".into(),
        };
        assert_eq!(e.to_string(), "start transaction: EBUSY");
    }

    #[test]
    fn errno_found_through_context() {
        let e: anyhow::Result<()> = Err(XsError::Remote {
            op: "read",
            path: "x".into(),
            errno: "ENOENT".into(),
        }
        .into());
        let e = e.context("while configuring").unwrap_err();
        assert!(is_enoent(&e));
        assert!(!is_eagain(&e));
        assert!(e.downcast_ref::<XsError>().is_some());
        let plain = anyhow::anyhow!("ENOENT");
        assert!(!is_enoent(&plain));
    }
}
