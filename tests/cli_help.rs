//! The hotplug binaries' `--help` and `--version`, their refusal of what cannot be a tap's
//! name, and of a run without CAP_NET_ADMIN (issue 18): each answers before it touches
//! anything, the network namespace, xenstore and (for `--help`) the logs. Needs root (for
//! the namespaces and mounts) and setpriv (util-linux).

mod common;
mod sandbox;

use common::*;
use sandbox::*;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The environment libxl (Xen binaries) or qemu (a bare PATH) gives `binary`, pointed at
/// the sandbox's xenstored.
fn caller_env(binary: &str, sandbox: &Sandbox) -> Vec<(&'static str, String)> {
    match binary.starts_with("vif-") {
        true => libxl_env(&sandbox.xenstored_path),
        false => vec![],
    }
}

fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Nothing was touched: the namespace as it was, no xenstore connection, no log record.
fn assert_untouched(host: &Host, before: &str, sandbox: &Sandbox, what: &str) {
    assert_eq!(
        network_state(&host.ns),
        before,
        "{what} changed the network"
    );
    assert_eq!(
        sandbox.xenstore_connections(),
        0,
        "{what} connected to xenstore"
    );
    assert_eq!(
        sandbox.syslog_records(),
        Vec::<String>::new(),
        "{what} logged to syslog"
    );
    assert_eq!(
        sandbox.xen_log_files(),
        Vec::<String>::new(),
        "{what} opened the log"
    );
}

#[test]
fn every_hotplug_binary_answers_help_and_version_and_touches_nothing() {
    let host = Host::new("hlp");
    let sandbox = Sandbox::new("hlp");
    let before = network_state(&host.ns);
    for binary in XEN_BINARIES.iter().chain(&QEMU_BINARIES) {
        let env = caller_env(binary, &sandbox);
        let env = borrowed(&env);
        for word in ["--help", "-h"] {
            let out =
                sandbox.run(sandbox.command(&host.ns.name, common::binary(binary), &[word], &env));
            let what = format!("{binary} {word}");
            assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out.stderr));
            assert_eq!(text(&out.stderr), "", "{what}");
            let help = text(&out.stdout);
            let usage = match binary.starts_with("vif-") {
                true => format!("Usage: {binary} online|offline [type_if=vif]\n"),
                false => format!("Usage: {binary} IFNAME [BRIDGE]\n"),
            };
            assert!(help.starts_with(&usage), "{what}: {help}");
            assert!(
                help.contains(&format!("       {binary} --help | --version\n")),
                "{what}: {help}"
            );
            assert!(
                help.ends_with(&format!("\nSee {binary}(8).\n")),
                "{what}: {help}"
            );
            let caller = match binary.starts_with("vif-") {
                true => "libxl runs it as the vif's script=",
                false => "qemu runs it as -netdev tap,",
            };
            assert!(help.contains(caller), "{what}: {help}");
            assert_untouched(&host, &before, &sandbox, &what);
        }
        for word in ["--version", "-V"] {
            let out =
                sandbox.run(sandbox.command(&host.ns.name, common::binary(binary), &[word], &env));
            let what = format!("{binary} {word}");
            assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out.stderr));
            assert_eq!(text(&out.stdout), format!("{binary} {VERSION}\n"), "{what}");
            assert_eq!(text(&out.stderr), "", "{what}");
            assert_untouched(&host, &before, &sandbox, &what);
        }
        // Help needs no privilege either.
        let out = sandbox.run(sandbox.as_nobody(
            &host.ns.name,
            &common::binary(binary),
            &["--version"],
            &env,
        ));
        assert_eq!(
            text(&out.stdout),
            format!("{binary} {VERSION}\n"),
            "{binary} as nobody: {}",
            text(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(0));
        assert_untouched(&host, &before, &sandbox, binary);
    }
}

/// `qemu-ifdown --help` used to take a tap called `--help` down, and exit 0: the test's tap0
/// on xenbr0 stands for a tap that such a run could have detached.
#[test]
fn a_help_word_counts_only_alone() {
    let host = Host::new("hlw");
    host.ns
        .ip(&["link", "set", "tap0", "master", "xenbr0", "up"]);
    let sandbox = Sandbox::new("hlw");
    let before = network_state(&host.ns);
    let env = libxl_env(&sandbox.xenstored_path);
    let out = sandbox.run(sandbox.command(
        &host.ns.name,
        binary("vif-bridge"),
        &["--help", "online"],
        &borrowed(&env),
    ));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        "vif-bridge: error: vif3.0: invalid command \"--help\": expected online, offline, add or remove\n"
    );
    assert_eq!(network_state(&host.ns), before);
    assert_eq!(
        sandbox.xenstore_connections(),
        0,
        "an invalid command reports nothing"
    );
    let out = sandbox.run(sandbox.command(
        &host.ns.name,
        binary("qemu-ifdown"),
        &["--help", "xenbr0"],
        &[],
    ));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "qemu-ifdown: error: invalid interface name \"--help\": it starts with '-' (qemu-ifdown takes no option but --help or --version, alone)\n"
    );
    assert_eq!(network_state(&host.ns), before);
    assert_eq!(host.ns.master_of("tap0").as_deref(), Some("xenbr0"));
}

#[test]
fn qemu_scripts_refuse_what_cannot_be_a_tap_in_one_sentence() {
    let host = Host::new("tapn");
    host.ns
        .ip(&["link", "set", "tap0", "master", "xenbr0", "up"]);
    let sandbox = Sandbox::new("tapn");
    let before = network_state(&host.ns);
    let refused = [
        ("", "it is empty"),
        ("tap0123456789abc", "it is longer than 15 bytes"),
        ("../tap0", "it contains '/'"),
        ("tap 0", "it contains whitespace or a control character"),
        ("tap0\n", "it contains whitespace or a control character"),
        (
            "-tap0",
            "it starts with '-' (SCRIPT takes no option but --help or --version, alone)",
        ),
        (
            "--bridge=br0",
            "it starts with '-' (SCRIPT takes no option but --help or --version, alone)",
        ),
    ];
    for script in QEMU_BINARIES {
        for (name, why) in refused {
            for args in [&[name][..], &[name, "xenbr0"]] {
                let out = sandbox.run(sandbox.command(&host.ns.name, binary(script), args, &[]));
                let what = format!("{script} {args:?}");
                assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out.stderr));
                let why = why.replace("SCRIPT", script);
                assert_eq!(
                    text(&out.stderr),
                    format!("{script}: error: invalid interface name {name:?}: {why}\n"),
                    "{what}"
                );
                assert_eq!(text(&out.stdout), "", "{what}");
                assert_eq!(
                    network_state(&host.ns),
                    before,
                    "{what} changed the network"
                );
            }
        }
    }
    // The refusal is logged, as any failure: to syslog, naming no tap.
    let records = sandbox.syslog_records();
    assert_eq!(records.len(), 2 * 2 * refused.len(), "{records:?}");
    assert!(
        records
            .iter()
            .all(|r| r.contains("]: invalid interface name ")),
        "{records:?}"
    );
    assert_eq!(host.ns.master_of("tap0").as_deref(), Some("xenbr0"));
}

#[test]
fn without_cap_net_admin_every_hotplug_binary_says_so_and_touches_nothing() {
    let host = Host::new("nrt");
    let sandbox = Sandbox::new("nrt");
    let before = network_state(&host.ns);
    for script in XEN_BINARIES {
        let env = libxl_env(&sandbox.xenstored_path);
        for args in [&["online", "type_if=vif"][..], &["offline", "type_if=vif"]] {
            let out = sandbox.run(sandbox.as_nobody(
                &host.ns.name,
                &binary(script),
                args,
                &borrowed(&env),
            ));
            let what = format!("{script} {args:?}");
            assert_eq!(out.status.code(), Some(1), "{what}");
            assert_eq!(
                text(&out.stderr),
                format!(
                    "{script}: error: vif3.0: must run as root (CAP_NET_ADMIN), not as uid 65534 without it\n"
                ),
                "{what}"
            );
            assert_eq!(
                network_state(&host.ns),
                before,
                "{what} changed the network"
            );
            assert_eq!(
                sandbox.xenstore_connections(),
                0,
                "{what} connected to xenstore"
            );
        }
    }
    for script in QEMU_BINARIES {
        let out = sandbox.run(sandbox.as_nobody(
            &host.ns.name,
            &binary(script),
            &["tap0", "xenbr0"],
            &[],
        ));
        assert_eq!(out.status.code(), Some(1), "{script}");
        assert_eq!(
            text(&out.stderr),
            format!(
                "{script}: error: tap0: must run as root (CAP_NET_ADMIN), not as uid 65534 without it\n"
            )
        );
        assert_eq!(
            network_state(&host.ns),
            before,
            "{script} changed the network"
        );
    }
    // Syslog has each refusal, as any failure.
    let records = sandbox.syslog_records();
    assert_eq!(records.len(), 2 * XEN_BINARIES.len() + 2, "{records:?}");
    assert!(
        records.iter().all(|r| r.starts_with("<27>")
            && r.ends_with(": must run as root (CAP_NET_ADMIN), not as uid 65534 without it")),
        "{records:?}"
    );
}

/// The admin verbs that read or change the network say the same; eui64 needs nothing.
#[test]
fn without_cap_net_admin_the_admin_verbs_say_so_and_eui64_still_answers() {
    let host = Host::new("nrv");
    let sandbox = Sandbox::new("nrv");
    let vifkit = binary("vifkit");
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["plan", "vif3.0"],
        &["check", "vif3.0"],
        &["reattach", "--all"],
    ] {
        let out = sandbox.run(sandbox.as_nobody(&host.ns.name, &vifkit, args, &[]));
        assert_eq!(out.status.code(), Some(1), "vifkit {args:?}");
        assert_eq!(
            text(&out.stderr),
            "vifkit: error: must run as root (CAP_NET_ADMIN), not as uid 65534 without it\n",
            "vifkit {args:?}"
        );
    }
    let out = sandbox.run(sandbox.as_nobody(
        &host.ns.name,
        &vifkit,
        &["eui64", "00:16:3e:10:10:10"],
        &[],
    ));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "fe80::216:3eff:fe10:1010\n");
}

/// The admin CLI answers --help and --version too, also without root.
#[test]
fn vifkit_answers_help_and_version() {
    let host = Host::new("nrh");
    let sandbox = Sandbox::new("nrh");
    let vifkit = binary("vifkit");
    let out = sandbox.run(sandbox.as_nobody(&host.ns.name, &vifkit, &["--version"], &[]));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        format!("vifkit {}\n", env!("CARGO_PKG_VERSION"))
    );
    let out = sandbox.run(sandbox.as_nobody(&host.ns.name, &vifkit, &["--help"], &[]));
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for verb in [
        "status",
        "plan",
        "check",
        "reattach",
        "eui64",
        "completions",
    ] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(verb)),
            "{verb} in {help}"
        );
    }
}
