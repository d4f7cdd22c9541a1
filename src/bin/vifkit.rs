//! The vifkit admin CLI.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vifkit::mac::MacAddr;

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
    Demo,
    /// Serve a small xenstore on a unix socket, for tests and the demo (not for production).
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    vifkit::logging::init("vifkit", false);
    let result = match cli.command {
        Verb::Demo => vifkit::demo::run(),
        Verb::Xenstored { socket } => vifkit::xenstore::server::run(&socket),
        Verb::Eui64 { mac } => {
            MacAddr::parse(&mac).map(|mac| println!("{}", mac.eui64_link_local()))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            log::error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}
