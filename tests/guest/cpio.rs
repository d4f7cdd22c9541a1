//! A minimal writer for the "newc" cpio format the kernel unpacks as an initramfs
//! (Documentation/driver-api/early-userspace/buffer-format.rst). No `cpio` binary needed.
//!
//! Each entry: a 110-byte ASCII header (`070701` and 13 fields of 8 hex digits: ino, mode,
//! uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize
//! with the NUL, check), the name and its NUL padded to a multiple of 4 from the start of
//! the header, then the data padded to a multiple of 4. The archive ends with an entry
//! named `TRAILER!!!`.

pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFCHR: u32 = 0o020000;

pub const HEADER_LEN: usize = 110;
const MAGIC: &str = "070701";
const TRAILER: &str = "TRAILER!!!";

/// The fields of one header, in their on-disk order after the magic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub ino: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub mtime: u32,
    pub filesize: u32,
    pub devmajor: u32,
    pub devminor: u32,
    pub rdevmajor: u32,
    pub rdevminor: u32,
    pub namesize: u32,
    pub check: u32,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let fields = [
            self.ino,
            self.mode,
            self.uid,
            self.gid,
            self.nlink,
            self.mtime,
            self.filesize,
            self.devmajor,
            self.devminor,
            self.rdevmajor,
            self.rdevminor,
            self.namesize,
            self.check,
        ];
        let mut text = String::with_capacity(HEADER_LEN);
        text.push_str(MAGIC);
        for f in fields {
            text.push_str(&format!("{f:08x}"));
        }
        text.into_bytes()
            .try_into()
            .expect("6 + 13 * 8 = 110 bytes")
    }
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// An archive being built in memory. Names are relative (`init`, `bin/busybox`); parent
/// directories must be added before their entries.
#[derive(Default)]
pub struct Archive {
    out: Vec<u8>,
    next_ino: u32,
}

impl Archive {
    pub fn new() -> Archive {
        Archive::default()
    }

    fn entry(&mut self, name: &str, mode: u32, nlink: u32, rdev: (u32, u32), data: &[u8]) {
        assert!(
            !name.is_empty() && !name.contains('\0'),
            "bad name {name:?}"
        );
        let ino = if name == TRAILER {
            0
        } else {
            self.next_ino += 1;
            self.next_ino
        };
        let header = Header {
            ino,
            mode,
            nlink,
            filesize: u32::try_from(data.len()).expect("file too large for newc"),
            rdevmajor: rdev.0,
            rdevminor: rdev.1,
            namesize: u32::try_from(name.len() + 1).unwrap(),
            ..Header::default()
        };
        self.out.extend_from_slice(&header.encode());
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        pad4(&mut self.out);
        self.out.extend_from_slice(data);
        pad4(&mut self.out);
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(name, S_IFDIR | 0o755, 2, (0, 0), &[]);
        self
    }

    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> &mut Self {
        self.entry(name, S_IFREG | perm, 1, (0, 0), data);
        self
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.entry(name, S_IFLNK | 0o777, 1, (0, 0), target.as_bytes());
        self
    }

    pub fn char_dev(&mut self, name: &str, perm: u32, major: u32, minor: u32) -> &mut Self {
        self.entry(name, S_IFCHR | perm, 1, (major, minor), &[]);
        self
    }

    /// Appends the trailer and returns the archive bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry(TRAILER, 0, 1, (0, 0), &[]);
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_magic_and_13_hex_fields() {
        let h = Header {
            ino: 1,
            mode: S_IFREG | 0o755,
            nlink: 1,
            filesize: 0x1234,
            rdevmajor: 5,
            rdevminor: 1,
            namesize: 5,
            ..Header::default()
        };
        let text = String::from_utf8(h.encode().to_vec()).unwrap();
        assert_eq!(
            text,
            concat!(
                "070701", "00000001", // ino
                "000081ed", // mode 0100755
                "00000000", // uid
                "00000000", // gid
                "00000001", // nlink
                "00000000", // mtime
                "00001234", // filesize
                "00000000", // devmajor
                "00000000", // devminor
                "00000005", // rdevmajor
                "00000001", // rdevminor
                "00000005", // namesize
                "00000000", // check
            )
        );
        assert_eq!(text.len(), HEADER_LEN);
    }

    #[test]
    fn entries_are_padded_to_four_bytes() {
        let mut a = Archive::new();
        a.file("init", 0o755, b"abcde");
        let bytes = a.finish();
        // Header 110 + "init\0" 5 = 115 -> 116; data 5 -> 8.
        assert_eq!(&bytes[110..116], b"init\0\0");
        assert_eq!(&bytes[116..124], b"abcde\0\0\0");
        // The trailer follows: header, "TRAILER!!!\0" (11) -> 110 + 11 = 121 -> 124.
        let trailer = &bytes[124..];
        assert_eq!(&trailer[..6], b"070701");
        assert_eq!(&trailer[94..102], b"0000000b"); // namesize 11
        assert_eq!(&trailer[110..121], b"TRAILER!!!\0");
        assert_eq!(trailer.len(), 124);
        assert_eq!(bytes.len() % 4, 0);
    }

    #[test]
    fn symlink_data_is_its_target_and_devices_carry_rdev() {
        let mut a = Archive::new();
        a.symlink("sh", "busybox").char_dev("console", 0o600, 5, 1);
        let bytes = a.finish();
        let link = std::str::from_utf8(&bytes[..HEADER_LEN]).unwrap();
        assert_eq!(&link[14..22], "0000a1ff"); // 0120777
        assert_eq!(&link[54..62], "00000007"); // filesize = len("busybox")
        // 110 + "sh\0" 3 = 113 -> 116; "busybox" 7 -> 124.
        assert_eq!(&bytes[116..124], b"busybox\0");
        let dev = std::str::from_utf8(&bytes[124..124 + HEADER_LEN]).unwrap();
        assert_eq!(&dev[14..22], "00002180"); // 020600
        assert_eq!(&dev[78..86], "00000005"); // rdevmajor
        assert_eq!(&dev[86..94], "00000001"); // rdevminor
    }
}
