//! Kernel parameters through `/proc/sys` paths with slash-separated keys: a dotted key
//! would split `vif1.0` into two components.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::types::names::IfName;

const ROOT: &str = "/proc/sys";

/// A validated key such as `net/ipv4/conf/xen1.0/proxy_arp`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key(String);

impl Key {
    pub fn new(key: &str) -> Result<Key> {
        if key.is_empty()
            || key
                .split('/')
                .any(|part| part.is_empty() || part == "." || part == "..")
        {
            bail!("invalid sysctl key {key:?}");
        }
        Ok(Key(key.to_owned()))
    }

    pub fn proxy_arp(dev: &IfName) -> Key {
        Key(format!("net/ipv4/conf/{dev}/proxy_arp"))
    }

    pub fn proxy_ndp(dev: &IfName) -> Key {
        Key(format!("net/ipv6/conf/{dev}/proxy_ndp"))
    }

    pub fn disable_ipv6(dev: &IfName) -> Key {
        Key(format!("net/ipv6/conf/{dev}/disable_ipv6"))
    }

    /// Absent when the kernel runs without IPv6 (`ipv6.disable=1`).
    pub fn disable_ipv6_all() -> Key {
        Key("net/ipv6/conf/all/disable_ipv6".to_owned())
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from(ROOT).join(&self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The current value, trimmed; None when the key does not exist (e.g. a vanished link).
pub fn read(key: &Key) -> Result<Option<String>> {
    match std::fs::read_to_string(key.path()) {
        Ok(value) => Ok(Some(value.trim().to_owned())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("read sysctl {key}")),
    }
}

pub fn write(key: &Key, value: &str) -> Result<()> {
    std::fs::write(key.path(), value).map_err(anyhow::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_dots_in_interface_names() {
        let dev = IfName::new("xen1.0").unwrap();
        assert_eq!(
            Key::proxy_arp(&dev).path(),
            PathBuf::from("/proc/sys/net/ipv4/conf/xen1.0/proxy_arp")
        );
        assert_eq!(
            Key::proxy_ndp(&dev).as_str(),
            "net/ipv6/conf/xen1.0/proxy_ndp"
        );
    }

    #[test]
    fn rejects_path_tricks() {
        for bad in ["", "net/../x", "net//x", "/net/x", "net/x/", "./x"] {
            assert_eq!(
                Key::new(bad).unwrap_err().to_string(),
                format!("invalid sysctl key {bad:?}")
            );
        }
        assert!(Key::new("net/ipv4/conf/all/forwarding").is_ok());
    }

    #[test]
    fn reads_a_real_key() {
        assert!(read(&Key::new("kernel/ostype").unwrap()).unwrap().is_some());
        assert_eq!(
            read(&Key::new("net/ipv4/conf/vknone0/proxy_arp").unwrap()).unwrap(),
            None
        );
    }
}
