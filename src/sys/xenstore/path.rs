//! Xenstore path rules (docs/misc/xenstore.txt), shared by the client,
//! which checks before sending so errors name the caller's path, and the
//! test server, which answers `EINVAL`.

use std::fmt;

/// Longest absolute path, in bytes.
pub const XENSTORE_ABS_PATH_MAX: usize = 3072;
/// Longest relative path, in bytes.
pub const XENSTORE_REL_PATH_MAX: usize = 2048;

/// The special watch paths; no node may have these names.
pub const SPECIAL_WATCHES: [&str; 2] = ["@introduceDomain", "@releaseDomain"];

/// Why a path was refused. The message does not repeat the path: callers
/// put it in their context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathError {
    Empty,
    TooLong {
        len: usize,
        max: usize,
    },
    BadChar {
        ch: char,
        at: usize,
    },
    DoubleSlash,
    TrailingSlash,
    /// A leading `@` outside a watch, where it is reserved.
    Reserved,
    UnknownSpecial,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::Empty => write!(f, "empty path"),
            PathError::TooLong { len, max } => {
                write!(f, "path of {len} bytes exceeds the {max}-byte limit")
            }
            PathError::BadChar { ch, at } => {
                write!(f, "invalid character {ch:?} at byte {at} of path")
            }
            PathError::DoubleSlash => write!(f, "path contains //"),
            PathError::TrailingSlash => write!(f, "path ends with /"),
            PathError::Reserved => write!(f, "a leading @ is reserved for special watches"),
            PathError::UnknownSpecial => write!(
                f,
                "unknown special watch (known: {})",
                SPECIAL_WATCHES.join(", ")
            ),
        }
    }
}

impl std::error::Error for PathError {}

pub fn is_absolute(path: &str) -> bool {
    path.starts_with('/')
}

/// Checks a node path, relative or absolute.
///
/// `@` is a valid character anywhere but first, as in C xenstored; a
/// leading `@` names a special watch and is only accepted by
/// [`validate_watch_path`].
pub fn validate_path(path: &str) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    let max = if is_absolute(path) {
        XENSTORE_ABS_PATH_MAX
    } else {
        XENSTORE_REL_PATH_MAX
    };
    if path.len() > max {
        return Err(PathError::TooLong {
            len: path.len(),
            max,
        });
    }
    if let Some((at, ch)) = path
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '/' | '_' | '@')))
    {
        return Err(PathError::BadChar { ch, at });
    }
    if path.starts_with('@') {
        return Err(PathError::Reserved);
    }
    if path.contains("//") {
        return Err(PathError::DoubleSlash);
    }
    if path.len() > 1 && path.ends_with('/') {
        return Err(PathError::TrailingSlash);
    }
    Ok(())
}

/// Checks the path of a WATCH or UNWATCH: a node path or a special watch.
pub fn validate_watch_path(path: &str) -> Result<(), PathError> {
    if path.starts_with('@') {
        return match SPECIAL_WATCHES.contains(&path) {
            true => Ok(()),
            false => Err(PathError::UnknownSpecial),
        };
    }
    validate_path(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn abs_of_len(n: usize) -> String {
        let mut p = String::from("/");
        while p.len() < n {
            p.push(if p.len() % 10 == 0 { '/' } else { 'a' });
        }
        // Never end on a slash: that is a different rule.
        if p.ends_with('/') {
            p.pop();
            p.push('b');
        }
        assert_eq!(p.len(), n);
        p
    }

    fn rel_of_len(n: usize) -> String {
        "x".repeat(n)
    }

    #[test]
    fn ordinary_paths_are_accepted() {
        for p in [
            "/",
            "/local/domain/0",
            "backend/vif/3/0/hotplug-status",
            "a",
            "A-Z_a-z/0-9",
            "/a@b",
            "device/vif/0/request@x",
        ] {
            assert_eq!(validate_path(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn absolute_limit_is_3072_bytes() {
        assert_eq!(validate_path(&abs_of_len(3072)), Ok(()));
        assert_eq!(
            validate_path(&abs_of_len(3073)),
            Err(PathError::TooLong {
                len: 3073,
                max: 3072
            })
        );
    }

    #[test]
    fn relative_limit_is_2048_bytes() {
        assert_eq!(validate_path(&rel_of_len(2048)), Ok(()));
        assert_eq!(
            validate_path(&rel_of_len(2049)),
            Err(PathError::TooLong {
                len: 2049,
                max: 2048
            })
        );
        // A relative path may not borrow the absolute allowance.
        assert!(validate_path(&rel_of_len(3000)).is_err());
    }

    #[test]
    fn empty_is_rejected() {
        assert_eq!(validate_path(""), Err(PathError::Empty));
        assert_eq!(validate_watch_path(""), Err(PathError::Empty));
    }

    #[test]
    fn every_character_outside_the_set_is_rejected() {
        for c in (0u8..128).map(char::from) {
            let ok = c.is_ascii_alphanumeric() || "-/_@".contains(c);
            let p = format!("/a{c}b");
            assert_eq!(validate_path(&p).is_ok(), ok, "{c:?}");
            if !ok {
                assert_eq!(validate_path(&p), Err(PathError::BadChar { ch: c, at: 2 }));
            }
        }
        assert_eq!(
            validate_path("/é"),
            Err(PathError::BadChar { ch: 'é', at: 1 })
        );
        assert_eq!(
            validate_path("a b").unwrap_err().to_string(),
            "invalid character ' ' at byte 1 of path"
        );
    }

    #[test]
    fn double_slash_is_rejected() {
        assert_eq!(validate_path("//"), Err(PathError::DoubleSlash));
        assert_eq!(validate_path("/a//b"), Err(PathError::DoubleSlash));
        assert_eq!(validate_path("a//b"), Err(PathError::DoubleSlash));
    }

    #[test]
    fn trailing_slash_only_for_root() {
        assert_eq!(validate_path("/"), Ok(()));
        assert_eq!(validate_path("/a/"), Err(PathError::TrailingSlash));
        assert_eq!(validate_path("a/"), Err(PathError::TrailingSlash));
    }

    #[test]
    fn leading_at_only_for_special_watches() {
        assert_eq!(validate_path("@introduceDomain"), Err(PathError::Reserved));
        assert_eq!(validate_path("@x"), Err(PathError::Reserved));
        assert_eq!(validate_watch_path("@introduceDomain"), Ok(()));
        assert_eq!(validate_watch_path("@releaseDomain"), Ok(()));
        assert_eq!(
            validate_watch_path("@releaseDomain/x"),
            Err(PathError::UnknownSpecial)
        );
        assert_eq!(validate_watch_path("@foo"), Err(PathError::UnknownSpecial));
        assert_eq!(validate_watch_path("/local/domain"), Ok(()));
        assert_eq!(validate_watch_path("a//b"), Err(PathError::DoubleSlash));
    }

    #[test]
    fn messages_are_short_and_name_the_limit() {
        assert_eq!(
            validate_path(&rel_of_len(2049)).unwrap_err().to_string(),
            "path of 2049 bytes exceeds the 2048-byte limit"
        );
        assert_eq!(
            validate_watch_path("@x").unwrap_err().to_string(),
            "unknown special watch (known: @introduceDomain, @releaseDomain)"
        );
    }
}
