//! Text that is safe to store for humans and tools that escape on output.

/// Makes `text` safe for `hotplug-error`: one line of printable ASCII with
/// no backslashes, so `xenstore-read` (which escapes) prints it unchanged.
/// Line breaks and tabs become spaces, anything else unprintable a `?`.
pub fn sanitise_error_text(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            '\\' => '?',
            c if c == ' ' || c.is_ascii_graphic() => c,
            _ => '?',
        })
        .collect();
    line.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitise_keeps_printable_ascii() {
        let s = "attach vif3.0 to bridge xenbr0: No such device (os error 19) ~!@#$%^&*()";
        assert_eq!(sanitise_error_text(s), s);
    }

    #[test]
    fn sanitise_makes_one_line() {
        assert_eq!(sanitise_error_text("a\nb\r\nc\td"), "a b  c d");
        assert_eq!(sanitise_error_text("\n  x  \n"), "x");
    }

    #[test]
    fn sanitise_replaces_backslash_control_and_non_ascii() {
        assert_eq!(sanitise_error_text(r"C:\dir"), "C:?dir");
        assert_eq!(sanitise_error_text("a\u{0}b\u{7}c\u{7f}d"), "a?b?c?d");
        assert_eq!(sanitise_error_text("naïve – ok"), "na?ve ? ok");
    }

    #[test]
    fn sanitise_output_is_always_clean() {
        let nasty: String = (0u32..0x300).filter_map(char::from_u32).collect();
        let out = sanitise_error_text(&nasty);
        assert!(out.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'\\'));
        assert_eq!(out.chars().count(), out.len());
        assert_eq!(sanitise_error_text(""), "");
    }
}
