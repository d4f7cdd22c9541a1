//! The netlink floor of `vif-bridge online` / `offline`: the kernel work of one plug and one
//! unplug, without process start-up, argv/environment parsing or xenstore.
//!
//! One process, one route netlink socket (the crate's own `vifkit::sys::rtnl::Netlink` on a
//! current-thread tokio runtime, as the binaries use it), and a loop of N iterations over
//! one port and one bridge that already exist in the network namespace it runs in:
//!
//! - online: look up the port and the bridge, link down if up, MAC fe:ff:ff:ff:ff:ff,
//!   the port's addresses (dump, then delete each but the IPv6 link-local), MTU = the bridge's, master =
//!   the bridge, link up;
//! - offline: look up the port, link down, no master.
//!
//! Each sequence is timed with `Instant`; medians and p90s are printed in ms.
//!
//! With `plug` or `unplug` instead of a count it makes one of them and exits, untimed: the
//! process floor, for timing fork + exec + the same requests + exit from outside, the way
//! libxl runs a hotplug script.
//!
//! ```sh
//! cargo build --release --example netlink_floor
//! ip netns exec NS target/release/examples/netlink_floor [ITERATIONS [PORT [BRIDGE]]]
//! ip netns exec NS target/release/examples/netlink_floor plug|unplug [PORT [BRIDGE]]
//! ```
//! Defaults: 1000 iterations, port `vif1.0`, bridge `xenbr0`. Leaves the port detached and down
//! (bar `plug`).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use vifkit::sys::rtnl::Netlink;
use vifkit::types::mac::MacAddr;
use vifkit::types::names::IfName;

enum Job {
    Loop(usize),
    Plug,
    Unplug,
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let job = match args.next().as_deref() {
        Some("plug") => Job::Plug,
        Some("unplug") => Job::Unplug,
        Some(n) => Job::Loop(n.parse().with_context(|| format!("iterations {n:?}"))?),
        None => Job::Loop(1000),
    };
    let port = IfName::new(&args.next().unwrap_or_else(|| "vif1.0".to_owned()))?;
    let bridge = IfName::new(&args.next().unwrap_or_else(|| "xenbr0".to_owned()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("build a tokio runtime")?;
    runtime.block_on(async {
        match job {
            Job::Loop(0) => bail!("iterations must be at least 1"),
            Job::Loop(iterations) => run(iterations, &port, &bridge).await,
            Job::Plug => plug(&Netlink::connect()?, &port, &bridge).await,
            Job::Unplug => unplug(&Netlink::connect()?, &port).await,
        }
    })
}

async fn run(iterations: usize, port: &IfName, bridge: &IfName) -> Result<()> {
    let netlink = Netlink::connect()?;
    // Start from the state an offline leaves, untimed.
    unplug(&netlink, port).await?;
    let mut online = Vec::with_capacity(iterations);
    let mut offline = Vec::with_capacity(iterations);
    for i in 0..iterations {
        let start = Instant::now();
        plug(&netlink, port, bridge).await?;
        online.push(start.elapsed());
        if i == 0 || i + 1 == iterations {
            check_plugged(&netlink, port, bridge).await?;
        }
        let start = Instant::now();
        unplug(&netlink, port).await?;
        offline.push(start.elapsed());
    }
    println!("netlink floor: {iterations} iterations on {port} and bridge {bridge}, one process");
    println!("online:  {}", summary(&mut online));
    println!("offline: {}", summary(&mut offline));
    Ok(())
}

/// The requests of an online, unconditionally (bar the link down, which only a link that is
/// up needs).
async fn plug(netlink: &Netlink, port: &IfName, bridge: &IfName) -> Result<()> {
    let link = netlink
        .link(port)
        .await?
        .with_context(|| format!("no link {port}"))?;
    let bridge = netlink
        .link(bridge)
        .await?
        .with_context(|| format!("no bridge {bridge}"))?;
    if link.up {
        netlink.set_up(link.index, false).await?;
    }
    netlink.set_mac(link.index, MacAddr::BACKEND_PORT).await?;
    for address in netlink.addresses(link.index).await? {
        if !address.is_ipv6_link_local() {
            netlink.del_address(link.index, address).await?;
        }
    }
    netlink.set_mtu(link.index, bridge.mtu).await?;
    netlink.set_master(link.index, Some(bridge.index)).await?;
    netlink.set_up(link.index, true).await
}

async fn unplug(netlink: &Netlink, port: &IfName) -> Result<()> {
    let link = netlink
        .link(port)
        .await?
        .with_context(|| format!("no link {port}"))?;
    netlink.set_up(link.index, false).await?;
    netlink.set_master(link.index, None).await
}

/// Untimed: the port really is an up port of the bridge with the backend MAC.
async fn check_plugged(netlink: &Netlink, port: &IfName, bridge: &IfName) -> Result<()> {
    let link = netlink.link(port).await?.context("port vanished")?;
    let bridge = netlink.link(bridge).await?.context("bridge vanished")?;
    if link.master != Some(bridge.index) || !link.up || link.mac != Some(MacAddr::BACKEND_PORT) {
        bail!(
            "{port} is not an up port of {} after a plug: {link:?}",
            bridge.name
        );
    }
    Ok(())
}

/// Nearest-rank median and p90 (as scripts/bench computes them), plus min and max, in ms.
fn summary(samples: &mut [Duration]) -> String {
    samples.sort_unstable();
    let n = samples.len();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = samples[n.div_ceil(2) - 1];
    let p90 = samples[(n * 9).div_ceil(10) - 1];
    format!(
        "median {:.3} ms, p90 {:.3} ms, min {:.3} ms, max {:.3} ms ({n} runs)",
        ms(median),
        ms(p90),
        ms(samples[0]),
        ms(samples[n - 1])
    )
}
