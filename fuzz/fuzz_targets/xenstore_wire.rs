//! Xenstore framing from raw bytes (`vifkit::sys::xenstore::wire::read_message`), as the
//! client decodes a reply stream: every message until the bytes run out or a header is
//! refused. Each decoded message must encode back to exactly the bytes it came from.
//!
//! Input: the bytes a xenstored sent.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vifkit::sys::xenstore::wire::{HEADER_LEN, Header, XENSTORE_PAYLOAD_MAX, read_message};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    loop {
        let before = rest;
        let Ok(message) = read_message(&mut rest) else {
            break;
        };
        let used = &before[..before.len() - rest.len()];
        assert!(message.payload.len() <= XENSTORE_PAYLOAD_MAX);
        assert_eq!(
            message.encode().unwrap(),
            used,
            "{message:?} does not round-trip"
        );
        let head: &[u8; HEADER_LEN] = used[..HEADER_LEN].try_into().unwrap();
        assert_eq!(Header::decode(head).encode(), *head);
        let _ = (message.kind(), format!("{message:?}"));
    }
});
