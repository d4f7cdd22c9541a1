//! Shell-style globs over interface names: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`.

use anyhow::{Result, bail};

pub fn validate(pattern: &str) -> Result<()> {
    let bytes = pattern.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'[' => match class_end(bytes, i) {
                Some(end) => i = end,
                None => bail!("pattern {pattern:?} has an unclosed ["),
            },
            b'/' | b':' => bail!(
                "pattern {pattern:?} contains {:?}, which no interface name has",
                bytes[i] as char
            ),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Index of the `]` closing the class that opens at `start`.
fn class_end(p: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if p.get(i) == Some(&b'!') {
        i += 1;
    }
    // A `]` right after the opening is a member, as in the shell.
    if p.get(i) == Some(&b']') {
        i += 1;
    }
    while i < p.len() {
        if p[i] == b']' {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn class_matches(class: &[u8], c: u8) -> bool {
    let (negate, class) = match class.first() {
        Some(b'!') => (true, &class[1..]),
        _ => (false, class),
    };
    let mut i = 0;
    let mut hit = false;
    while i < class.len() {
        if i + 2 < class.len() && class[i + 1] == b'-' {
            hit |= class[i] <= c && c <= class[i + 2];
            i += 3;
        } else {
            hit |= class[i] == c;
            i += 1;
        }
    }
    hit != negate
}

pub fn matches(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') => (0..=s.len()).any(|skip| matches(&p[1..], &s[skip..])),
        Some(b'?') => !s.is_empty() && matches(&p[1..], &s[1..]),
        Some(b'[') => match class_end(p, 0) {
            Some(end) => {
                !s.is_empty() && class_matches(&p[1..end], s[0]) && matches(&p[end + 1..], &s[1..])
            }
            None => s.first() == Some(&b'[') && matches(&p[1..], &s[1..]),
        },
        Some(&c) => s.first() == Some(&c) && matches(&p[1..], &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let m = |p: &str, s: &str| matches(p.as_bytes(), s.as_bytes());
        assert!(m("tap*", "tap0"));
        assert!(m("tap*", "tap"));
        assert!(!m("tap*", "vnet0"));
        assert!(m("vnet?", "vnet1"));
        assert!(!m("vnet?", "vnet10"));
        assert!(m("web-[0-9]", "web-7"));
        assert!(!m("web-[0-9]", "web-x"));
        assert!(m("web-[!0-9]", "web-x"));
        assert!(m("[]a]x", "]x"));
        assert!(m("*.0", "vif3.0"));
        assert!(m("exact", "exact"));
        assert!(!m("exact", "exact1"));
    }

    #[test]
    fn invalid_patterns() {
        assert_eq!(
            validate("tap[0").unwrap_err().to_string(),
            "pattern \"tap[0\" has an unclosed ["
        );
        assert_eq!(
            validate("a/b").unwrap_err().to_string(),
            "pattern \"a/b\" contains '/', which no interface name has"
        );
        assert!(validate("tap[0-9]*").is_ok());
    }
}
