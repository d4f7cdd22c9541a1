//! A qemu tap's rate limit towards the guest, as `tc qdisc replace dev TAP root tbf` sets
//! it (Xen vifs are limited by netback from `B/rate` instead): a token bucket on the tap's
//! egress holds what the host sends the guest. netlink-packet-route has no tbf, so its
//! option struct is written here. The other direction, what the guest sends, is policed
//! on the tap's ingress (`police.rs`).

use anyhow::{Context, Result};
use futures::StreamExt;
use rtnetlink::packet_core::{
    DefaultNla, NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkMessage,
    NetlinkPayload, Nla,
};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::tc::{TcAttribute, TcHandle, TcMessage, TcOption};

use super::{Netlink, os_error};

const TCA_TBF_PARMS: u16 = 1;
const TCA_TBF_RATE64: u16 = 4;
const TCA_TBF_BURST: u16 = 6;
const TC_LINKLAYER_ETHERNET: u8 = 1;
/// The kernel's psched tick is 64 ns (PSCHED_SHIFT 6).
const NS_PER_TICK: u64 = 64;

/// Bytes per second, and the burst the bucket holds: 20 ms of traffic, at least 32 KiB.
fn shape(bits_per_second: u64) -> (u64, u32) {
    let rate = (bits_per_second / 8).max(1);
    let burst = (rate / 50).clamp(32 * 1024, u64::from(u32::MAX / 2));
    (rate, burst as u32)
}

/// `struct tc_ratespec`; tbf needs no rate table (`cell_log` 0), since the link layer is
/// given.
pub(super) fn ratespec(cell_log: u8, rate: u64) -> Vec<u8> {
    let mut spec = vec![cell_log, TC_LINKLAYER_ETHERNET];
    spec.extend_from_slice(&0u16.to_ne_bytes()); // overhead
    spec.extend_from_slice(&(-1i16).to_ne_bytes()); // cell_align
    spec.extend_from_slice(&0u16.to_ne_bytes()); // mpu
    spec.extend_from_slice(&(rate.min(u64::from(u32::MAX)) as u32).to_ne_bytes());
    spec
}

fn ticks(burst: u32, rate: u64) -> u32 {
    let ns = u64::from(burst) * 1_000_000_000 / rate;
    (ns / NS_PER_TICK).min(u64::from(u32::MAX)) as u32
}

/// `struct tc_tbf_qopt` and its companions.
pub(crate) fn tbf_options(bits_per_second: u64) -> Vec<TcOption> {
    let (rate, burst) = shape(bits_per_second);
    let mut parms = ratespec(0, rate);
    parms.extend(vec![0; 12]); // no peak rate
    parms.extend_from_slice(&(burst.saturating_mul(2)).to_ne_bytes()); // limit: queue bytes
    parms.extend_from_slice(&ticks(burst, rate).to_ne_bytes()); // buffer
    parms.extend_from_slice(&0u32.to_ne_bytes()); // mtu (peak rate only)
    let mut options = vec![
        TcOption::Other(DefaultNla::new(TCA_TBF_PARMS, parms)),
        TcOption::Other(DefaultNla::new(TCA_TBF_BURST, burst.to_ne_bytes().to_vec())),
    ];
    if rate > u64::from(u32::MAX) {
        let rate64 = rate.to_ne_bytes().to_vec();
        options.push(TcOption::Other(DefaultNla::new(TCA_TBF_RATE64, rate64)));
    }
    options
}

impl Netlink {
    /// Limits what the tap sends the guest to `bits_per_second`; replaces an earlier limit.
    pub async fn set_rate_limit(&self, index: u32, bits_per_second: u64) -> Result<()> {
        let mut tbf = TcMessage::with_index(index as i32);
        tbf.header.parent = TcHandle::ROOT;
        tbf.header.handle = TcHandle { major: 1, minor: 0 };
        tbf.attributes.push(TcAttribute::Kind("tbf".into()));
        tbf.attributes
            .push(TcAttribute::Options(tbf_options(bits_per_second)));
        let replace = NLM_F_CREATE | NLM_F_REPLACE;
        self.tc(RouteNetlinkMessage::NewQueueDiscipline(tbf), replace)
            .await
    }

    /// One tc request with `flags` besides REQUEST|ACK; the kernel's errno on failure.
    pub(super) async fn tc(&self, message: RouteNetlinkMessage, flags: u16) -> Result<()> {
        let mut request = NetlinkMessage::from(message);
        request.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        let mut response = self.handle.clone().request(request).map_err(os_error)?;
        while let Some(message) = response.next().await {
            if let NetlinkPayload::Error(err) = message.payload
                && err.code.is_some()
            {
                return Err(os_error(rtnetlink::Error::NetlinkError(err)));
            }
        }
        Ok(())
    }
}

/// A link's root qdisc: its kind and, for a tbf, its rate in bytes per second.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootQdisc {
    pub kind: String,
    pub tbf_rate: Option<u64>,
}

impl Netlink {
    /// The root qdisc of link `index`; None when it has none (a tap that was never up).
    pub async fn root_qdisc(&self, index: u32) -> Result<Option<RootQdisc>> {
        let query = TcMessage::with_index(index as i32);
        let messages = self
            .dump(RouteNetlinkMessage::GetQueueDiscipline(query))
            .await
            .with_context(|| format!("list the qdiscs of link #{index}"))?;
        let root = messages.into_iter().find_map(|message| match message {
            RouteNetlinkMessage::NewQueueDiscipline(q)
                if q.header.index == index as i32 && q.header.parent == TcHandle::ROOT =>
            {
                Some(q)
            }
            _ => None,
        });
        Ok(root.map(|qdisc| {
            let mut found = RootQdisc {
                kind: String::new(),
                tbf_rate: None,
            };
            for attribute in &qdisc.attributes {
                match attribute {
                    TcAttribute::Kind(kind) => found.kind = kind.clone(),
                    TcAttribute::Options(options) => found.tbf_rate = tbf_rate(options),
                    _ => {}
                }
            }
            if found.kind != "tbf" {
                found.tbf_rate = None;
            }
            found
        }))
    }
}

/// A tbf's rate from its options (netlink-packet-route keeps them as one raw attribute):
/// `TCA_TBF_PARMS`' `rate.rate`, or `TCA_TBF_RATE64` when present.
fn tbf_rate(options: &[TcOption]) -> Option<u64> {
    const TCA_TBF_PARMS: u16 = 1;
    const TCA_TBF_RATE64: u16 = 4;
    let TcOption::Other(raw) = options.first()? else {
        return None;
    };
    let mut nested = vec![0; raw.value_len()];
    raw.emit_value(&mut nested);
    let (mut rate, mut rate64) = (None, None);
    let mut rest = nested.as_slice();
    while rest.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        let kind = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
        let Some(value) = rest.get(4..len) else {
            break;
        };
        match kind {
            TCA_TBF_PARMS => {
                rate = value
                    .get(8..12)
                    .map(|b| u64::from(u32::from_ne_bytes(b.try_into().unwrap_or_default())))
            }
            TCA_TBF_RATE64 => {
                rate64 = value
                    .get(..8)
                    .map(|b| u64::from_ne_bytes(b.try_into().unwrap_or_default()))
            }
            _ => {}
        }
        rest = rest.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    rate64.or(rate)
}

#[cfg(test)]
mod tests {
    use rtnetlink::packet_core::Nla;

    use super::*;

    fn value(option: &TcOption) -> Vec<u8> {
        let mut buf = vec![0; option.value_len()];
        option.emit_value(&mut buf);
        buf
    }

    fn u32_at(bytes: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn tbf_parms_are_a_tc_tbf_qopt_with_the_burst_beside_it() {
        let options = tbf_options(8_000_000);
        let parms = value(&options[0]);
        // rate, peak rate (two 12-byte tc_ratespec), limit, buffer, mtu.
        assert_eq!(parms.len(), 36);
        assert_eq!(parms[1], TC_LINKLAYER_ETHERNET);
        assert_eq!(u32_at(&parms, 8), 1_000_000);
        assert_eq!(u32_at(&parms, 24), 65_536);
        // 32 KiB at 1 MB/s is 32.768 ms, in 64 ns ticks.
        assert_eq!(u32_at(&parms, 28), 512_000);
        assert_eq!(value(&options[1]), 32_768u32.to_ne_bytes());
        assert_eq!(options.len(), 2, "no 64-bit rate below 4 GB/s");
        assert_eq!(tbf_options(40_000_000_000).len(), 3);
    }

    #[test]
    fn a_tbf_rate_is_read_from_its_parms_or_its_64_bit_rate() {
        use rtnetlink::packet_core::DefaultNla;
        let nest = |attrs: &[(u16, Vec<u8>)]| {
            let mut buf = vec![];
            for (kind, value) in attrs {
                buf.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
                buf.extend_from_slice(&kind.to_ne_bytes());
                buf.extend_from_slice(value);
                buf.resize(buf.len().next_multiple_of(4), 0);
            }
            vec![TcOption::Other(DefaultNla::new(2, buf))]
        };
        let mut parms = vec![0u8; 36];
        parms[8..12].copy_from_slice(&1_250_000u32.to_ne_bytes());
        assert_eq!(tbf_rate(&nest(&[(1, parms.clone())])), Some(1_250_000));
        let rate64 = 5_000_000_000u64.to_ne_bytes().to_vec();
        assert_eq!(
            tbf_rate(&nest(&[(1, parms), (4, rate64)])),
            Some(5_000_000_000)
        );
        assert_eq!(tbf_rate(&[]), None);
    }
}
