//! Shell-style globs over interface names: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`.
//!
//! Matching is linear in the pattern for each position of the name: a run of `*` counts as
//! one, and only the last `*` is ever backtracked to (the two-pointer algorithm), so a
//! pattern of 100 `*` costs no more than one. Every other token matches exactly one byte,
//! which is what makes backtracking to the last `*` alone enough.

use anyhow::{Result, bail};

/// The longest pattern a section may give. An interface name has at most 15 bytes, so even
/// a pattern spelling each of them as a class is far below it.
pub const MAX_PATTERN_LEN: usize = 255;

pub fn validate(pattern: &str) -> Result<()> {
    if pattern.len() > MAX_PATTERN_LEN {
        bail!(
            "a pattern of {} bytes is longer than the limit of {MAX_PATTERN_LEN} bytes",
            pattern.len()
        );
    }
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

/// One token of a pattern and the index just past it.
enum Token<'p> {
    /// A run of `*`, however long.
    Star,
    /// `?`, a class, or a literal byte: each matches exactly one byte of the name.
    One(One<'p>),
}

enum One<'p> {
    Any,
    Class(&'p [u8]),
    Byte(u8),
}

impl One<'_> {
    fn matches(&self, c: u8) -> bool {
        match *self {
            One::Any => true,
            One::Class(class) => class_matches(class, c),
            One::Byte(b) => b == c,
        }
    }
}

fn token(p: &[u8], i: usize) -> (Token<'_>, usize) {
    match p[i] {
        b'*' => {
            let run = p[i..].iter().take_while(|&&b| b == b'*').count();
            (Token::Star, i + run)
        }
        b'?' => (Token::One(One::Any), i + 1),
        // An unclosed `[` is a literal, as in the shell (`validate` refuses it in a config).
        b'[' => match class_end(p, i) {
            Some(end) => (Token::One(One::Class(&p[i + 1..end])), end + 1),
            None => (Token::One(One::Byte(b'[')), i + 1),
        },
        c => (Token::One(One::Byte(c)), i + 1),
    }
}

/// Whether the name `s` matches the pattern `p`, in O(|p|·|s|) steps at worst.
pub fn matches(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    // Where to resume after the last `*` seen: the pattern just past it, and the first byte
    // of the name that `*` has not swallowed yet.
    let mut star: Option<(usize, usize)> = None;
    loop {
        if pi < p.len() {
            match token(p, pi) {
                (Token::Star, next) => {
                    star = Some((next, si));
                    pi = next;
                    continue;
                }
                (Token::One(one), next) if si < s.len() && one.matches(s[si]) => {
                    pi = next;
                    si += 1;
                    continue;
                }
                _ => {}
            }
        } else if si == s.len() {
            return true;
        }
        // A mismatch: let the last `*` take one more byte and try again from there.
        match star {
            Some((after, taken)) if taken < s.len() => {
                star = Some((after, taken + 1));
                pi = after;
                si = taken + 1;
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn m(p: &str, s: &str) -> bool {
        matches(p.as_bytes(), s.as_bytes())
    }

    #[test]
    fn globs() {
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
    fn stars_anywhere_and_backtracking_to_the_last_one() {
        assert!(m("*", ""));
        assert!(m("*", "vif3.0"));
        assert!(m("**", "x"));
        assert!(!m("?", ""));
        assert!(!m("", "x"));
        assert!(m("", ""));
        assert!(m("*a*b", "xaaab"));
        assert!(m("*a*b", "ab"));
        assert!(!m("*a*b", "ba"));
        assert!(m("v*.*-emu", "vif3.0-emu"));
        assert!(!m("v*.*-emu", "vif3.0"));
        assert!(m("*0", "vif10.0"));
        assert!(m("a*a", "aa"));
        assert!(!m("a*a", "a"));
        assert!(m("*?", "x"));
        assert!(!m("*??", "x"));
        assert!(m("*[0-9]", "tap10"));
        assert!(!m("*[!0-9]", "tap10"));
        assert!(m("*[!0-9]", "tapx"));
        // A `*` inside a class is a member, not a wildcard.
        assert!(m("tap[*]", "tap*"));
        assert!(!m("tap[*]", "tap0"));
        assert!(m("[*]*", "*x"));
        // An unclosed class is a literal `[` (validate refuses it in vifkit.conf).
        assert!(m("tap[0", "tap[0"));
        assert!(!m("tap[0", "tap0"));
        assert!(m("*[", "x["));
    }

    /// The same answers as the recursive matcher this replaced, on every short pattern and
    /// name over a small alphabet.
    #[test]
    fn agrees_with_the_backtracking_matcher() {
        fn reference(p: &[u8], s: &[u8]) -> bool {
            match p.first() {
                None => s.is_empty(),
                Some(b'*') => (0..=s.len()).any(|skip| reference(&p[1..], &s[skip..])),
                Some(b'?') => !s.is_empty() && reference(&p[1..], &s[1..]),
                Some(b'[') => match class_end(p, 0) {
                    Some(end) => {
                        !s.is_empty()
                            && class_matches(&p[1..end], s[0])
                            && reference(&p[end + 1..], &s[1..])
                    }
                    None => s.first() == Some(&b'[') && reference(&p[1..], &s[1..]),
                },
                Some(&c) => s.first() == Some(&c) && reference(&p[1..], &s[1..]),
            }
        }
        fn words(alphabet: &[u8], max: usize) -> Vec<Vec<u8>> {
            let mut all = vec![vec![]];
            let mut last = vec![vec![]];
            for _ in 0..max {
                let mut next = vec![];
                for w in &last {
                    for &c in alphabet {
                        let mut w = w.clone();
                        w.push(c);
                        next.push(w);
                    }
                }
                all.extend(next.iter().cloned());
                last = next;
            }
            all
        }
        let names = words(b"ab]", 4);
        let mut patterns = words(b"a*?", 4);
        for class in ["[a]", "[!a]", "[]a]", "[a-b]", "[!]]"] {
            for suffix in ["", "*", "a", "*b"] {
                for prefix in ["", "*", "a*"] {
                    patterns.push(format!("{prefix}{class}{suffix}").into_bytes());
                }
            }
        }
        for p in &patterns {
            for s in &names {
                assert_eq!(
                    matches(p, s),
                    reference(p, s),
                    "{:?} against {:?}",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(s)
                );
            }
        }
    }

    /// Patterns that took the backtracking matcher seconds (48 `*`) or for ever (100 `*`).
    #[test]
    fn pathological_patterns_match_at_once() {
        let started = Instant::now();
        let stars = "*".repeat(100);
        let many = format!("{stars}x");
        assert!(!m(&many, "vif123456.78901"));
        assert!(m(&stars, "vif123456.78901"));
        let interleaved = "*a".repeat(60) + "*b";
        assert!(!m(&interleaved, &"a".repeat(15)));
        let classes = "*[a-z]".repeat(40) + "*0";
        assert!(!m(&classes, "abcdefghijklmn1"));
        let questions = "*?".repeat(60);
        assert!(!m(&questions, "tap0"));
        assert!(m(&"*?".repeat(4), "tap0"));
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "took {:?}",
            started.elapsed()
        );
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

    #[test]
    fn the_pattern_length_is_capped_at_255_bytes() {
        assert!(validate(&"*".repeat(MAX_PATTERN_LEN)).is_ok());
        assert_eq!(
            validate(&"*".repeat(MAX_PATTERN_LEN + 1))
                .unwrap_err()
                .to_string(),
            "a pattern of 256 bytes is longer than the limit of 255 bytes"
        );
    }
}
