//! Xenstore framing (xs_wire.h): a 16-byte header of four little-endian
//! `u32`s followed by at most [`XENSTORE_PAYLOAD_MAX`] payload bytes.

use std::fmt;
use std::io::{self, Read, Write};

/// Largest payload either side may send; a bigger `len` kills the connection.
pub const XENSTORE_PAYLOAD_MAX: usize = 4096;

/// Size of the fixed message header.
pub const HEADER_LEN: usize = 16;

/// Error names a server may put in an `ERROR` reply (xs_wire.h `xsd_errors`).
pub const ERROR_NAMES: [&str; 16] = [
    "EINVAL",
    "EACCES",
    "EEXIST",
    "EISDIR",
    "ENOENT",
    "ENOMEM",
    "ENOSPC",
    "EIO",
    "ENOTEMPTY",
    "ENOSYS",
    "EROFS",
    "EBUSY",
    "EAGAIN",
    "EISCONN",
    "E2BIG",
    "EPERM",
];

/// Message types (xs_wire.h `xsd_sockmsg_type`). 20 was removed upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum MsgType {
    Control = 0,
    Directory = 1,
    Read = 2,
    GetPerms = 3,
    Watch = 4,
    Unwatch = 5,
    TransactionStart = 6,
    TransactionEnd = 7,
    Introduce = 8,
    Release = 9,
    GetDomainPath = 10,
    Write = 11,
    Mkdir = 12,
    Rm = 13,
    SetPerms = 14,
    WatchEvent = 15,
    Error = 16,
    IsDomainIntroduced = 17,
    Resume = 18,
    SetTarget = 19,
    ResetWatches = 21,
    DirectoryPart = 22,
    GetFeature = 23,
    SetFeature = 24,
    GetQuota = 25,
    SetQuota = 26,
    /// Guaranteed never to be a valid type.
    Invalid = 0xffff,
}

impl MsgType {
    const ALL: [MsgType; 27] = [
        MsgType::Control,
        MsgType::Directory,
        MsgType::Read,
        MsgType::GetPerms,
        MsgType::Watch,
        MsgType::Unwatch,
        MsgType::TransactionStart,
        MsgType::TransactionEnd,
        MsgType::Introduce,
        MsgType::Release,
        MsgType::GetDomainPath,
        MsgType::Write,
        MsgType::Mkdir,
        MsgType::Rm,
        MsgType::SetPerms,
        MsgType::WatchEvent,
        MsgType::Error,
        MsgType::IsDomainIntroduced,
        MsgType::Resume,
        MsgType::SetTarget,
        MsgType::ResetWatches,
        MsgType::DirectoryPart,
        MsgType::GetFeature,
        MsgType::SetFeature,
        MsgType::GetQuota,
        MsgType::SetQuota,
        MsgType::Invalid,
    ];

    /// The type with wire number `n`, if there is one.
    pub fn from_u32(n: u32) -> Option<MsgType> {
        MsgType::ALL.into_iter().find(|t| *t as u32 == n)
    }
}

/// The fixed part of every message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Raw type number: kept raw so a server can answer unknown types.
    pub msg_type: u32,
    pub req_id: u32,
    pub tx_id: u32,
    pub len: u32,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        for (i, v) in [self.msg_type, self.req_id, self.tx_id, self.len]
            .into_iter()
            .enumerate()
        {
            out[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8; HEADER_LEN]) -> Header {
        let word = |i: usize| u32::from_le_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap());
        Header {
            msg_type: word(0),
            req_id: word(1),
            tx_id: word(2),
            len: word(3),
        }
    }
}

/// One whole message: header fields plus payload.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    pub msg_type: u32,
    pub req_id: u32,
    pub tx_id: u32,
    pub payload: Vec<u8>,
}

impl Message {
    pub fn new(msg_type: MsgType, req_id: u32, tx_id: u32, payload: Vec<u8>) -> Message {
        Message {
            msg_type: msg_type as u32,
            req_id,
            tx_id,
            payload,
        }
    }

    pub fn kind(&self) -> Option<MsgType> {
        MsgType::from_u32(self.msg_type)
    }

    /// Header and payload in one buffer, so the xenbus device gets the
    /// whole request in a single write().
    pub fn encode(&self) -> io::Result<Vec<u8>> {
        if self.payload.len() > XENSTORE_PAYLOAD_MAX {
            return Err(oversize(self.payload.len(), io::ErrorKind::InvalidInput));
        }
        let header = Header {
            msg_type: self.msg_type,
            req_id: self.req_id,
            tx_id: self.tx_id,
            len: self.payload.len() as u32,
        };
        let mut out = Vec::with_capacity(HEADER_LEN + self.payload.len());
        out.extend_from_slice(&header.encode());
        out.extend_from_slice(&self.payload);
        Ok(out)
    }
}

impl fmt::Debug for Message {
    // Payloads are mostly text with NUL separators; show them that way in
    // trace logs instead of as a list of numbers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind() {
            Some(t) => format!("{t:?}"),
            None => format!("type {}", self.msg_type),
        };
        write!(
            f,
            "{kind} req {} tx {} {:?}",
            self.req_id,
            self.tx_id,
            String::from_utf8_lossy(&self.payload)
        )
    }
}

fn oversize(len: usize, kind: io::ErrorKind) -> io::Error {
    io::Error::new(
        kind,
        format!("payload of {len} bytes exceeds the {XENSTORE_PAYLOAD_MAX}-byte limit"),
    )
}

/// Reads one message. A header announcing more than
/// [`XENSTORE_PAYLOAD_MAX`] bytes is an `InvalidData` error and the
/// payload is left unread: the stream is unusable afterwards.
pub fn read_message(r: &mut impl Read) -> io::Result<Message> {
    let mut head = [0u8; HEADER_LEN];
    r.read_exact(&mut head)?;
    let header = Header::decode(&head);
    let len = header.len as usize;
    if len > XENSTORE_PAYLOAD_MAX {
        return Err(oversize(len, io::ErrorKind::InvalidData));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Message {
        msg_type: header.msg_type,
        req_id: header.req_id,
        tx_id: header.tx_id,
        payload,
    })
}

/// Writes one message with a single `write_all`.
pub fn write_message(w: &mut impl Write, msg: &Message) -> io::Result<()> {
    w.write_all(&msg.encode()?)?;
    w.flush()
}

/// `s` followed by a NUL, the form of every string argument on the wire.
pub fn nul_terminated(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 1);
    out.extend_from_slice(s.as_bytes());
    out.push(0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_numbers_match_xs_wire() {
        assert_eq!(MsgType::from_u32(0), Some(MsgType::Control));
        assert_eq!(MsgType::from_u32(7), Some(MsgType::TransactionEnd));
        assert_eq!(MsgType::from_u32(15), Some(MsgType::WatchEvent));
        assert_eq!(MsgType::from_u32(16), Some(MsgType::Error));
        assert_eq!(MsgType::from_u32(19), Some(MsgType::SetTarget));
        assert_eq!(MsgType::from_u32(20), None);
        assert_eq!(MsgType::from_u32(21), Some(MsgType::ResetWatches));
        assert_eq!(MsgType::from_u32(26), Some(MsgType::SetQuota));
        assert_eq!(MsgType::from_u32(27), None);
        assert_eq!(MsgType::from_u32(0xffff), Some(MsgType::Invalid));
        for t in MsgType::ALL {
            assert_eq!(MsgType::from_u32(t as u32), Some(t));
        }
    }

    #[test]
    fn header_is_four_little_endian_words() {
        let h = Header {
            msg_type: 2,
            req_id: 0x0102_0304,
            tx_id: 7,
            len: 4096,
        };
        let bytes = h.encode();
        assert_eq!(bytes, [2, 0, 0, 0, 4, 3, 2, 1, 7, 0, 0, 0, 0, 0x10, 0, 0]);
        assert_eq!(Header::decode(&bytes), h);
    }

    #[test]
    fn message_round_trip() {
        let msg = Message::new(MsgType::Write, 9, 3, b"a/b\0value".to_vec());
        let mut buf = Vec::new();
        write_message(&mut buf, &msg).unwrap();
        assert_eq!(buf.len(), HEADER_LEN + 9);
        let back = read_message(&mut buf.as_slice()).unwrap();
        assert_eq!(back, msg);
    }

    #[test]
    fn empty_payload_round_trip() {
        let msg = Message::new(MsgType::Directory, 0, 0, Vec::new());
        let buf = msg.encode().unwrap();
        assert_eq!(read_message(&mut buf.as_slice()).unwrap(), msg);
    }

    #[test]
    fn payload_limit_is_inclusive_on_write() {
        let ok = Message::new(MsgType::Write, 0, 0, vec![b'x'; XENSTORE_PAYLOAD_MAX]);
        assert_eq!(
            ok.encode().unwrap().len(),
            HEADER_LEN + XENSTORE_PAYLOAD_MAX
        );
        let big = Message::new(MsgType::Write, 0, 0, vec![b'x'; XENSTORE_PAYLOAD_MAX + 1]);
        let err = big.encode().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            err.to_string(),
            "payload of 4097 bytes exceeds the 4096-byte limit"
        );
    }

    #[test]
    fn oversize_len_is_rejected_before_reading_payload() {
        let mut exact = Header {
            msg_type: 2,
            req_id: 0,
            tx_id: 0,
            len: XENSTORE_PAYLOAD_MAX as u32,
        }
        .encode()
        .to_vec();
        exact.extend(vec![b'a'; XENSTORE_PAYLOAD_MAX]);
        assert_eq!(
            read_message(&mut exact.as_slice()).unwrap().payload.len(),
            4096
        );

        let big = Header {
            msg_type: 2,
            req_id: 0,
            tx_id: 0,
            len: XENSTORE_PAYLOAD_MAX as u32 + 1,
        }
        .encode();
        let err = read_message(&mut big.as_slice()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn truncated_message_is_eof() {
        let buf = Message::new(MsgType::Read, 0, 0, b"abc\0".to_vec())
            .encode()
            .unwrap();
        let err = read_message(&mut &buf[..buf.len() - 1]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let err = read_message(&mut &buf[..10]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn debug_shows_payload_as_text() {
        let msg = Message::new(MsgType::Read, 1, 0, b"a\0".to_vec());
        assert_eq!(format!("{msg:?}"), r#"Read req 1 tx 0 "a\0""#);
        let odd = Message {
            msg_type: 99,
            req_id: 0,
            tx_id: 0,
            payload: Vec::new(),
        };
        assert_eq!(format!("{odd:?}"), r#"type 99 req 0 tx 0 """#);
    }
}
