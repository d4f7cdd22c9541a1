//! Other programs' base chains on the forward hook, read with one `NFT_MSG_GETCHAIN` dump per
//! IP family: what Docker, firewalld or iptables-nft leave there decides whether bridged
//! guests' traffic passes once `br_netfilter` hands it to the IP hooks. A dump of one family
//! skips the other families' tables whole, so vifkit's own netdev chains (one per filtered
//! port, 10,000 on a big host) are never listed: one dump of every family cost a plug 20 ms
//! there (BENCHMARKS.md, "Scale").

use std::io;

use super::{ANSWER_WAIT, wire};
use crate::sys::deadline;
use crate::sys::nfnl::{self, messages};

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_GETCHAIN: u16 = 4;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NLM_F_DUMP: u16 = 0x300;
const NFPROTO_INET: u8 = 1;
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;
const NF_INET_FORWARD: u32 = 2;
const NF_DROP: u32 = 0;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFGENMSG_LEN: usize = 4;

/// The families whose forward hook sees bridged frames once `br_netfilter` passes them on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpFamily {
    Ip,
    Ip6,
    Inet,
}

impl IpFamily {
    fn from_nfproto(family: u8) -> Option<IpFamily> {
        match family {
            NFPROTO_IPV4 => Some(IpFamily::Ip),
            NFPROTO_IPV6 => Some(IpFamily::Ip6),
            NFPROTO_INET => Some(IpFamily::Inet),
            _ => None,
        }
    }

    /// As nft names it.
    pub fn as_str(self) -> &'static str {
        match self {
            IpFamily::Ip => "ip",
            IpFamily::Ip6 => "ip6",
            IpFamily::Inet => "inet",
        }
    }
}

/// A base chain on the forward hook of an ip, ip6 or inet table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardChain {
    pub family: IpFamily,
    pub table: String,
    pub name: String,
    /// Its policy is drop: what no rule accepts is dropped.
    pub drops: bool,
}

/// Every base chain on the forward hook of an ip, ip6 or inet table: the ip tables' first,
/// then ip6, then inet, each family's in the kernel's order.
pub fn forward_chains() -> io::Result<Vec<ForwardChain>> {
    let socket = nfnl::Socket::open()?;
    let mut chains = vec![];
    let mut buffer = vec![0; 64 * 1024];
    for (seq, family) in (1..).zip([NFPROTO_IPV4, NFPROTO_IPV6, NFPROTO_INET]) {
        socket.send(&dump_request(family, seq))?;
        dump_into(&socket, seq, &mut buffer, &mut chains)?;
    }
    Ok(chains)
}

/// Reads the answer to dump `seq` into `chains`, until its NLMSG_DONE.
fn dump_into(
    socket: &nfnl::Socket,
    seq: u32,
    buffer: &mut [u8],
    chains: &mut Vec<ForwardChain>,
) -> io::Result<()> {
    loop {
        let until = deadline::bound(ANSWER_WAIT);
        let n = socket.recv_by(buffer, until, "nf_tables did not finish listing its chains")?;
        for message in messages(&buffer[..n]) {
            let message = message?;
            if message.seq != seq {
                continue;
            }
            match message.kind {
                kind if kind == nix::libc::NLMSG_DONE as u16 => return Ok(()),
                kind if kind == nix::libc::NLMSG_ERROR as u16 => match message.errno() {
                    0 => {}
                    errno => return Err(io::Error::from_raw_os_error(errno)),
                },
                _ => chains.extend(forward_chain(message.kind, message.payload)),
            }
        }
    }
}

/// `NFT_MSG_GETCHAIN` as a dump of one family's chains.
fn dump_request(family: u8, seq: u32) -> Vec<u8> {
    let mut buf = vec![];
    let kind = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETCHAIN;
    let start = nfnl::begin_message(&mut buf, kind, NLM_F_DUMP, seq, family, 0);
    nfnl::end_message(&mut buf, start);
    buf
}

/// One message of the dump, if it is a forward base chain of an IP family.
fn forward_chain(kind: u16, payload: &[u8]) -> Option<ForwardChain> {
    if kind != (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWCHAIN {
        return None;
    }
    let family = IpFamily::from_nfproto(*payload.first()?)?;
    let attrs = payload.get(NFGENMSG_LEN..)?;
    let hook = wire::attribute(attrs, NFTA_CHAIN_HOOK)?;
    if be32(wire::attribute(hook, NFTA_HOOK_HOOKNUM)?)? != NF_INET_FORWARD {
        return None;
    }
    let string = |kind| {
        let value = wire::attribute(attrs, kind)?;
        let text = value.split(|b| *b == 0).next()?;
        Some(String::from_utf8_lossy(text).into_owned())
    };
    Some(ForwardChain {
        family,
        table: string(NFTA_CHAIN_TABLE)?,
        name: string(NFTA_CHAIN_NAME)?,
        drops: wire::attribute(attrs, NFTA_CHAIN_POLICY).and_then(be32) == Some(NF_DROP),
    })
}

fn be32(value: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(value.get(..4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A NEWCHAIN message's payload as the kernel sends it (nfgenmsg, then attributes).
    fn chain(family: u8, table: &str, name: &str, hook: Option<(u32, u32)>) -> Vec<u8> {
        let mut buf = vec![family, 0, 0, 0];
        let attr = |buf: &mut Vec<u8>, kind: u16, value: &[u8]| {
            buf.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
            buf.extend_from_slice(&kind.to_ne_bytes());
            buf.extend_from_slice(value);
            buf.resize(buf.len().next_multiple_of(4), 0);
        };
        attr(
            &mut buf,
            NFTA_CHAIN_TABLE,
            &[table.as_bytes(), &[0]].concat(),
        );
        attr(&mut buf, NFTA_CHAIN_NAME, &[name.as_bytes(), &[0]].concat());
        if let Some((number, policy)) = hook {
            let mut nest = vec![];
            attr(&mut nest, NFTA_HOOK_HOOKNUM, &number.to_be_bytes());
            attr(&mut nest, 2, &0u32.to_be_bytes());
            attr(&mut buf, NFTA_CHAIN_HOOK | 0x8000, &nest);
            attr(&mut buf, NFTA_CHAIN_POLICY, &policy.to_be_bytes());
        }
        buf
    }

    const NEWCHAIN: u16 = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWCHAIN;

    #[test]
    fn forward_base_chains_of_ip_families_are_read_with_their_policy() {
        let docker = chain(NFPROTO_IPV4, "filter", "FORWARD", Some((2, 0)));
        assert_eq!(
            forward_chain(NEWCHAIN, &docker),
            Some(ForwardChain {
                family: IpFamily::Ip,
                table: "filter".into(),
                name: "FORWARD".into(),
                drops: true,
            })
        );
        let open = chain(NFPROTO_INET, "firewalld", "filter_FORWARD", Some((2, 1)));
        let read = forward_chain(NEWCHAIN, &open).unwrap();
        assert_eq!((read.family, read.drops), (IpFamily::Inet, false));
        assert_eq!(read.family.as_str(), "inet");
    }

    #[test]
    fn other_hooks_regular_chains_and_other_families_are_not_forward_chains() {
        let input = chain(NFPROTO_IPV4, "filter", "INPUT", Some((1, 0)));
        let regular = chain(NFPROTO_IPV6, "filter", "DOCKER", None);
        let bridge = chain(7, "filter", "forward", Some((2, 0)));
        for payload in [input, regular, bridge] {
            assert_eq!(forward_chain(NEWCHAIN, &payload), None);
        }
        let table = chain(NFPROTO_IPV4, "filter", "FORWARD", Some((2, 0)));
        assert_eq!(forward_chain(NEWCHAIN - 3, &table), None, "a NEWTABLE");
    }

    #[test]
    fn the_dump_asks_one_family_for_its_chains() {
        let request = dump_request(NFPROTO_IPV6, 2);
        assert_eq!(request.len(), 20);
        assert_eq!(u16::from_ne_bytes([request[4], request[5]]), 0x0a04);
        assert_eq!(u16::from_ne_bytes([request[6], request[7]]), 0x301);
        assert_eq!(u32::from_ne_bytes(request[8..12].try_into().unwrap()), 2);
        assert_eq!(request[16], NFPROTO_IPV6);
    }
}
