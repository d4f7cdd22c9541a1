//! The backend directory `B` of a vif, read once and parsed into typed values
//! (CONTRACT 2.1, 2.2, 2.4). Only backend keys drive decisions.

use anyhow::{Context, Result, bail};

use std::net::IpAddr;

use crate::input::invocation::XenCall;
use crate::sys::xenstore::Client;
use crate::types::bridge_word::{BadWord, BridgeOrigin, BridgeWord, GivenBridge};
use crate::types::mac::MacAddr;
use crate::types::names::{IfName, parse_decimal};
use crate::types::prefix::Prefix;

/// The raw values as xenstore holds them; `None` where the key is absent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackendKeys {
    pub bridge: Option<String>,
    pub mtu: Option<String>,
    pub frontend: Option<String>,
    pub frontend_id: Option<String>,
    pub handle: Option<String>,
    pub vifname: Option<String>,
    pub nic_type: Option<String>,
    pub ip: Option<String>,
    pub mac: Option<String>,
    /// xl's `vlan=` (Xen 4.19 and later).
    pub vlan: Option<String>,
}

impl BackendKeys {
    pub fn read(client: &mut Client, backend: &str) -> Result<BackendKeys> {
        const NAMES: [&str; 10] = [
            "bridge",
            "mtu",
            "frontend",
            "frontend-id",
            "handle",
            "vifname",
            "type",
            "ip",
            "mac",
            "vlan",
        ];
        let paths: Vec<String> = NAMES
            .iter()
            .map(|name| format!("{backend}/{name}"))
            .collect();
        let [
            bridge,
            mtu,
            frontend,
            frontend_id,
            handle,
            vifname,
            nic_type,
            ip,
            mac,
            vlan,
        ]: [Option<String>; 10] = client
            .read_many(&paths)?
            .try_into()
            .expect("one value per key");
        Ok(BackendKeys {
            bridge,
            mtu,
            frontend,
            frontend_id,
            handle,
            vifname,
            nic_type,
            ip,
            mac,
            vlan,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    pub path: String,
    pub bridge: Option<String>,
    pub mtu: Option<u32>,
    pub vifname: Option<IfName>,
    /// `<B/frontend>/mtu`, once the frontend path is proven to be this device's.
    pub frontend_mtu_key: Option<String>,
    /// The raw `ip` setting (B/ip, else the `ip=` word or variable), as hooks see it.
    pub ip: Option<String>,
    /// `ip`, parsed: each address with its prefix length, /32 or /128 when none is given.
    pub addresses: Vec<Prefix>,
    pub mac: Option<MacAddr>,
    /// `B/vlan` as written (never empty): the port's VLANs on a VLAN-aware bridge or Open
    /// vSwitch, parsed by `XenPort::xen_vlan` when a bridged mode attaches.
    pub vlan: Option<String>,
}

/// B/ip is free text: addresses separated by blanks (or commas, as some toolstacks write),
/// each with an optional `/prefix`.
pub fn parse_ip_list(text: &str) -> Result<Vec<Prefix>> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|word| !word.is_empty())
        .map(|word| {
            let (address, prefix) = match word.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (word, None),
            };
            let Ok(address) = address.parse::<IpAddr>() else {
                bail!("invalid address {word:?}");
            };
            let max = if address.is_ipv4() { 32 } else { 128 };
            let prefix_len = match prefix.map(|p| parse_decimal(p).filter(|&n| n <= max)) {
                None => max as u8,
                Some(Some(n)) => n as u8,
                Some(None) => bail!("invalid prefix length in {word:?}"),
            };
            Ok(Prefix::new(address, prefix_len))
        })
        .collect()
}

/// Linux refuses an MTU below 68 for IPv4; netback's ceiling is 65535.
const MTU_RANGE: std::ops::RangeInclusive<u32> = 68..=65535;

pub fn parse_mtu(value: &str) -> Result<u32> {
    match parse_decimal(value.trim()) {
        Some(mtu) if MTU_RANGE.contains(&mtu) => Ok(mtu),
        _ => bail!("invalid MTU {value:?}: expected a number from 68 to 65535"),
    }
}

impl Backend {
    /// The bridge word as given: `B/bridge`, else the `bridge=` argument or environment
    /// (merged into the call's overrides), as upstream takes it and hooks see it.
    pub fn given_bridge(&self, call: &XenCall) -> Option<GivenBridge> {
        let key = || BridgeOrigin::Xenstore(format!("{}/bridge", self.path));
        match &self.bridge {
            Some(text) => Some(GivenBridge::new(text.clone(), key())),
            None => call.overrides.bridge.clone(),
        }
    }

    /// The bridge word, parsed when a bridged mode asks: a bad one fails only them.
    pub fn bridge_word(&self, call: &XenCall) -> Option<Result<BridgeWord, BadWord>> {
        self.given_bridge(call).map(|given| given.word())
    }

    pub fn parse(call: &XenCall, keys: BackendKeys) -> Result<Backend> {
        let path = &call.backend;
        let mtu = keys
            .mtu
            .as_deref()
            .map(parse_mtu)
            .transpose()
            .with_context(|| format!("{path}/mtu"))?;
        let hvm = keys.nic_type.as_deref() == Some("vif_ioemu");
        let vifname = match keys.vifname.as_deref() {
            None | Some("") => None,
            Some(name) => {
                let name = IfName::new(name).with_context(|| format!("{path}/vifname"))?;
                // HVM guests also get `<vifname>-emu`, which must fit too.
                if hvm && name.as_str().len() > 11 {
                    bail!(
                        "{path}/vifname: {:?} is longer than 11 bytes, which an HVM guest needs to add -emu",
                        name.as_str()
                    );
                }
                Some(name)
            }
        };
        let (ip, ip_source) = match keys.ip.clone().filter(|ip| !ip.trim().is_empty()) {
            Some(ip) => (Some(ip), format!("{path}/ip")),
            None => (call.overrides.ip.clone(), "ip".to_owned()),
        };
        let addresses = parse_ip_list(ip.as_deref().unwrap_or("")).with_context(|| ip_source)?;
        // An attach refuses a MAC no guest can have (antispoofing would drop every frame);
        // a detach takes what is there, so a port plugged before this check still goes.
        let parse_mac = match call.command.is_attach() {
            true => MacAddr::parse_guest,
            false => MacAddr::parse,
        };
        let mac = keys
            .mac
            .as_deref()
            .map(parse_mac)
            .transpose()
            .with_context(|| format!("{path}/mac"))?;
        Ok(Backend {
            frontend_mtu_key: frontend_mtu_key(call, &keys)?,
            path: path.clone(),
            bridge: keys.bridge.filter(|b| !b.is_empty()),
            mtu,
            vifname,
            ip,
            addresses,
            mac,
            // Empty is unset, as for Xen's script.
            vlan: keys.vlan.filter(|v| !v.trim().is_empty()),
        })
    }
}

/// The guest may not choose where we write: B/frontend must be the path that
/// B/frontend-id and B/handle (and the device id of XENBUS_PATH) give.
fn frontend_mtu_key(call: &XenCall, keys: &BackendKeys) -> Result<Option<String>> {
    let Some(frontend) = keys.frontend.as_deref() else {
        log::warn!(
            "{}/frontend is missing: the guest will not learn the MTU",
            call.backend
        );
        return Ok(None);
    };
    let domid = keys.frontend_id.as_deref().and_then(parse_decimal);
    let handle = keys.handle.as_deref().and_then(parse_decimal);
    let expected = format!(
        "/local/domain/{}/device/vif/{}",
        domid.unwrap_or(call.vif.domid),
        handle.unwrap_or(call.vif.devid)
    );
    let consistent =
        domid.is_none_or(|d| d == call.vif.domid) && handle.is_none_or(|h| h == call.vif.devid);
    if frontend != expected || !consistent {
        bail!(
            "{}/frontend is {frontend:?}, expected /local/domain/{}/device/vif/{}",
            call.backend,
            call.vif.domid,
            call.vif.devid
        );
    }
    Ok(Some(format!("{frontend}/mtu")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::invocation::Command;

    fn call() -> XenCall {
        XenCall::for_test(Command::Online, 3, 0)
    }

    fn keys() -> BackendKeys {
        BackendKeys {
            bridge: Some("xenbr0".into()),
            frontend: Some("/local/domain/3/device/vif/0".into()),
            frontend_id: Some("3".into()),
            handle: Some("0".into()),
            nic_type: Some("vif".into()),
            mac: Some("00:16:3e:00:00:01".into()),
            ..Default::default()
        }
    }

    #[test]
    fn libxl_keys() {
        let backend = Backend::parse(&call(), keys()).unwrap();
        assert_eq!(backend.bridge.as_deref(), Some("xenbr0"));
        assert_eq!(backend.mtu, None);
        assert_eq!(
            backend.frontend_mtu_key.as_deref(),
            Some("/local/domain/3/device/vif/0/mtu")
        );
    }

    #[test]
    fn mtu_limits() {
        assert_eq!(parse_mtu("68").unwrap(), 68);
        assert_eq!(parse_mtu("65535").unwrap(), 65535);
        for bad in ["67", "65536", "", "9k", "-1", "1500.0"] {
            assert_eq!(
                parse_mtu(bad).unwrap_err().to_string(),
                format!("invalid MTU {bad:?}: expected a number from 68 to 65535")
            );
        }
        let mut k = keys();
        k.mtu = Some("jumbo".into());
        assert_eq!(
            format!("{:#}", Backend::parse(&call(), k).unwrap_err()),
            "backend/vif/3/0/mtu: invalid MTU \"jumbo\": expected a number from 68 to 65535"
        );
    }

    #[test]
    fn frontend_must_be_this_device() {
        let mut k = keys();
        k.frontend = Some("/local/domain/4/device/vif/0".into());
        assert_eq!(
            Backend::parse(&call(), k).unwrap_err().to_string(),
            "backend/vif/3/0/frontend is \"/local/domain/4/device/vif/0\", expected /local/domain/3/device/vif/0"
        );
        let mut k = keys();
        k.handle = Some("1".into());
        k.frontend = Some("/local/domain/3/device/vif/1".into());
        assert!(Backend::parse(&call(), k).is_err());
    }

    #[test]
    fn ip_lists() {
        let list = parse_ip_list(" 192.0.2.241 2001:db8:abba::1001/64,10.0.0.1/24 ").unwrap();
        let shown: Vec<String> = list.iter().map(Prefix::to_string).collect();
        assert_eq!(
            shown,
            ["192.0.2.241/32", "2001:db8:abba::1001/64", "10.0.0.1/24"]
        );
        assert!(parse_ip_list("").unwrap().is_empty());
        assert_eq!(
            parse_ip_list("10.0.0.300").unwrap_err().to_string(),
            "invalid address \"10.0.0.300\""
        );
        assert_eq!(
            parse_ip_list("10.0.0.1/33").unwrap_err().to_string(),
            "invalid prefix length in \"10.0.0.1/33\""
        );
        assert!(parse_ip_list("::1/128").is_ok());
        assert!(parse_ip_list("::1/129").is_err());
        let mut k = keys();
        k.ip = Some("192.0.2.1 bogus".into());
        assert_eq!(
            format!("{:#}", Backend::parse(&call(), k).unwrap_err()),
            "backend/vif/3/0/ip: invalid address \"bogus\""
        );
        let mut k = keys();
        k.mac = Some("00:16:3e:1:2:3".into());
        assert_eq!(
            format!("{:#}", Backend::parse(&call(), k).unwrap_err()),
            "backend/vif/3/0/mac: invalid MAC address \"00:16:3e:1:2:3\": expected six hex pairs like 00:16:3e:01:02:03"
        );
    }

    #[test]
    fn b_mac_must_be_a_guests_on_attach() {
        for (mac, why) in [
            ("ff:ff:ff:ff:ff:ff", "is the broadcast address"),
            ("01:00:5e:7f:00:01", "is a multicast address"),
            ("00:00:00:00:00:00", "is the all-zero address"),
            ("fe:ff:ff:ff:ff:ff", "is the backend port's own address"),
        ] {
            let mut k = keys();
            k.mac = Some(mac.into());
            assert_eq!(
                format!("{:#}", Backend::parse(&call(), k.clone()).unwrap_err()),
                format!("backend/vif/3/0/mac: {mac} {why}, not a guest's MAC")
            );
            let offline = XenCall::for_test(Command::Offline, 3, 0);
            let backend = Backend::parse(&offline, k).expect("a detach takes the MAC as it is");
            assert_eq!(backend.mac.map(|m| m.to_string()).as_deref(), Some(mac));
        }
    }

    #[test]
    fn vlan_is_kept_as_written_and_empty_is_unset() {
        assert_eq!(Backend::parse(&call(), keys()).unwrap().vlan, None);
        let mut k = keys();
        k.vlan = Some("10/20".into());
        let backend =
            Backend::parse(&call(), k).expect("a bad vlan fails only the modes that read it");
        assert_eq!(backend.vlan.as_deref(), Some("10/20"));
        let mut k = keys();
        k.vlan = Some(" ".into());
        assert_eq!(Backend::parse(&call(), k).unwrap().vlan, None);
    }

    #[test]
    fn vifname_limits() {
        let mut k = keys();
        k.vifname = Some("a23456789012345".into());
        assert!(Backend::parse(&call(), k.clone()).is_ok());
        k.vifname = Some("a234567890123456".into());
        assert_eq!(
            format!("{:#}", Backend::parse(&call(), k.clone()).unwrap_err()),
            "backend/vif/3/0/vifname: invalid interface name \"a234567890123456\": it is longer than 15 bytes"
        );
        k.nic_type = Some("vif_ioemu".into());
        k.vifname = Some("a2345678901".into());
        assert!(Backend::parse(&call(), k.clone()).is_ok());
        k.vifname = Some("a23456789012".into());
        assert_eq!(
            Backend::parse(&call(), k).unwrap_err().to_string(),
            "backend/vif/3/0/vifname: \"a23456789012\" is longer than 11 bytes, which an HVM guest needs to add -emu"
        );
    }
}
