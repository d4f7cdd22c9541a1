//! `vifkit.conf` (`vifkit::input::config::Config::parse`), then what a run asks of it for
//! each interface name: the matching `[port]` section (`rule_for`, shell globs),
//! `antispoof_for`, `traffic_for`, and qemu-ifup's and qemu-ifdown's pure choice of what
//! to do with a tap (`planning::modes::qemu::choose_up`, `choose_down`).
//!
//! Input: `CONFIG TEXT\0NAME\0NAME...`; without a valid name, `tap0` and `vif1.0` are asked.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use vifkit::input::config::Config;
use vifkit::planning::modes::qemu::{BridgeSources, choose_down, choose_up};
use vifkit::types::names::IfName;

mod common;

fuzz_target!(|data: &[u8]| {
    let parts = common::parts(data);
    let path = Path::new("/etc/vifkit/vifkit.conf");
    let Ok(config) = Config::parse(path, &parts[0]) else {
        return;
    };
    for rule in &config.ports {
        if let Some(mtu) = rule.mtu {
            assert!((68..=65535).contains(&mtu), "{rule:?}: MTU out of range");
        }
        assert!(
            !rule.patterns.is_empty(),
            "{rule:?}: a section without patterns"
        );
    }
    let mut names: Vec<IfName> = parts[1..]
        .iter()
        .filter_map(|name| IfName::new(name).ok())
        .collect();
    if names.is_empty() {
        names = vec![IfName::new("tap0").unwrap(), IfName::new("vif1.0").unwrap()];
    }
    for name in &names {
        let rule = config.rule_for(name);
        let _ = config.antispoof_for(name);
        let _ = config.traffic_for(name);
        let sources = BridgeSources {
            argument: None,
            env: None,
            rule,
            config_path: path,
        };
        let _ = choose_up(name, &sources);
        let _ = choose_down(&sources);
    }
});
