//! The vifkit admin CLI.

#[cfg(feature = "lab")]
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use clap_complete::Shell;
use vifkit::types::mac::MacAddr;

#[derive(Parser)]
#[command(
    name = "vifkit",
    version,
    about = "Xen and KVM network hotplug, planned and applied over netlink"
)]
struct Cli {
    #[command(subcommand)]
    command: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// Run the seed's scenarios in throwaway network namespaces and report.
    #[cfg(feature = "lab")]
    Demo,
    /// Serve a small xenstore on a unix socket, for tests and the demo (not for production).
    #[cfg(feature = "lab")]
    Xenstored {
        /// Where to create the socket.
        #[arg(long)]
        socket: PathBuf,
    },
    /// Print the EUI-64 IPv6 link-local address a MAC address gives.
    Eui64 {
        /// e.g. 00:16:3e:10:10:10
        mac: String,
    },
    /// Print what online would do for a port now, from the inputs a hotplug run reads
    /// (xenstore for a Xen vif, vifkit.conf for a qemu tap); change nothing.
    Plan {
        /// A Xen vif (its vifname or vif<domid>.<devid>, -emu taps too) or a qemu tap.
        dev: String,
    },
    /// Compare a port's live kernel and xenstore state with what online leaves, and say
    /// what on the host stops its traffic besides (a forward chain dropping bridged
    /// frames, a tap's rate limit replaced, NetworkManager managing it); print every
    /// difference and exit 1 if any.
    Check {
        /// A Xen vif (its vifname or vif<domid>.<devid>, -emu taps too) or a qemu tap.
        dev: String,
    },
    /// List every port vifkit manages (Xen vifs from dom0's backend directory, their -emu
    /// taps, qemu taps) with its domain, mode, bridge or uplink, addresses, filter,
    /// hotplug-status and health (ok, or check's first difference); exit 1 if any drifts.
    Status {
        /// Print a JSON array, one object per port, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Re-plug ports after the host changed under them, redoing only what is missing (no
    /// hooks, no conntrack purge): bridged ports back on a recreated bridge, routed and NAT
    /// ports' proxy entries and nft tables. Exit 1 if one fails.
    Reattach {
        /// A bridge (its Xen vifs and qemu taps; the udev rule passes the bridge that
        /// appeared) or an uplink (the routed and NAT ports leaving by it, after `ifdown
        /// eth0; ifup eth0`). Without it: every bridged port.
        name: Option<String>,
        /// Every port of every mode, NAT included (after `nft -f /etc/nftables.conf`).
        #[arg(long, conflicts_with = "name")]
        all: bool,
    },
    /// Stay running and repair vifkit's ports as soon as the host changes under them (a
    /// bridge recreated, an uplink down and up, `nft flush ruleset`), as `reattach` would;
    /// for systemd (vifkit-watch.service). Logs one line per repair.
    Watch {
        /// Bytes of receive queue for each notification socket; when a burst overflows it,
        /// every port is checked again.
        #[arg(long, default_value_t = vifkit::entry::admin::QUEUE_BYTES)]
        queue_bytes: usize,
    },
    /// Print the shell completion script.
    Completions { shell: Shell },
}

impl Verb {
    /// Whether the verb reads or changes the kernel's network state, which needs
    /// CAP_NET_ADMIN (the test xenstored only serves a unix socket).
    fn touches_the_network(&self) -> bool {
        match self {
            #[cfg(feature = "lab")]
            Verb::Xenstored { .. } => false,
            Verb::Eui64 { .. } | Verb::Completions { .. } => false,
            _ => true,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The watcher logs a line per repair, not each step of it.
    let default_filter = match cli.command {
        Verb::Watch { .. } => "info,vifkit::apply=warn",
        _ => "info",
    };
    vifkit::entry::logging::init_with_default("vifkit", false, default_filter);
    let result = match cli.command.touches_the_network() {
        true => vifkit::entry::require_net_admin(),
        false => Ok(()),
    }
    .and_then(|()| match cli.command {
        #[cfg(feature = "lab")]
        Verb::Demo => vifkit::lab::demo::run(),
        #[cfg(feature = "lab")]
        Verb::Xenstored { socket } => vifkit::lab::xenstored::server::run(&socket),
        Verb::Eui64 { mac } => {
            MacAddr::parse(&mac).map(|mac| println!("{}", mac.eui64_link_local()))
        }
        Verb::Plan { dev } => vifkit::entry::admin::plan(&dev),
        Verb::Check { dev } => vifkit::entry::admin::check(&dev).and_then(|clean| match clean {
            true => Ok(()),
            false => anyhow::bail!("{dev} has drifted from what online leaves"),
        }),
        Verb::Status { json } => vifkit::entry::admin::status(json).and_then(|drifting| {
            match drifting {
                0 => Ok(()),
                n => anyhow::bail!(
                    "{n} port(s) drift from what online leaves (vifkit check PORT lists each difference)"
                ),
            }
        }),
        Verb::Reattach { name, all } => {
            use vifkit::entry::admin::Scope;
            let scope = match (&name, all) {
                (_, true) => Scope::All,
                (Some(name), false) => Scope::Named(name),
                (None, false) => Scope::Bridges,
            };
            vifkit::entry::admin::reattach(scope).and_then(|failed| match failed {
                0 => Ok(()),
                n => anyhow::bail!("{n} port(s) could not be reattached"),
            })
        }
        Verb::Watch { queue_bytes } => vifkit::entry::admin::watch(queue_bytes),
        Verb::Completions { shell } => {
            // Into a buffer first: the generator panics on a closed pipe (`| head`).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "vifkit", &mut script);
            std::io::Write::write_all(&mut std::io::stdout(), &script)
                .or_else(|e| match e.kind() {
                    std::io::ErrorKind::BrokenPipe => Ok(()),
                    _ => Err(e),
                })
                .map_err(anyhow::Error::from)
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            log::error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}
