//! What the hotplug runs say (issue 18): every log line of a run names its vif or tap, in
//! stderr, syslog and xen-hotplug.log alike; a port left unfiltered is said at info level; a
//! missing bridge names where its name came from; a sysconfig route line naming a device
//! that is nowhere is warned of with its file and line. Needs root.

mod common;
mod routed;
mod sandbox;

use std::process::Output;

use common::*;
use routed::Seed21;
use sandbox::*;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A host with xenbr0 and netback's vif3.0, and a xenstore with libxl's keys for it.
struct Rig {
    host: Host,
    xs: Xenstore,
    vif: Vif,
}

impl Rig {
    fn new(tag: &str, vif: Vif) -> Rig {
        let host = Host::new(tag);
        let xs = Xenstore::start();
        xs.write_vif(&vif);
        Rig { host, xs, vif }
    }

    fn key(&self, key: &str) -> Option<String> {
        self.xs.read(&format!("{}/{key}", self.vif.backend()))
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        hotplug(&self.host.ns, &self.xs, &self.vif, args, env)
    }
}

/// The level of a stderr line of `binary` (`info` has no word) and the rest.
fn stderr_record<'a>(binary: &str, line: &'a str) -> (&'a str, &'a str) {
    let rest = line
        .strip_prefix(binary)
        .and_then(|r| r.strip_prefix(": "))
        .unwrap_or_else(|| panic!("not {binary}'s: {line:?}"));
    ["error", "warning", "debug"]
        .iter()
        .find_map(|level| Some((*level, rest.strip_prefix(&format!("{level}: "))?)))
        .unwrap_or(("info", rest))
}

/// Every record of one run, in each sink, starts with `port: `; each sink has them all.
fn assert_every_line_names(binary: &str, port: &str, out: &Output, sandbox: &Sandbox, file: bool) {
    let err = text(&out.stderr);
    let messages: Vec<&str> = err
        .lines()
        .map(|line| stderr_record(binary, line).1)
        .collect();
    assert!(messages.len() >= 3, "{err}");
    for message in &messages {
        assert!(message.starts_with(&format!("{port}: ")), "{err}");
    }
    let syslog = sandbox.syslog_records();
    assert_eq!(syslog.len(), messages.len(), "{syslog:#?}\n{err}");
    for (record, message) in syslog.iter().zip(&messages) {
        let (head, said) = record.split_once("]: ").unwrap();
        assert!(
            head.starts_with('<') && head.contains(&format!(">{binary}[")),
            "{record}"
        );
        assert_eq!(said, *message);
    }
    if !file {
        assert_eq!(sandbox.xen_log_files(), Vec::<String>::new());
        return;
    }
    let log = sandbox.xen_log();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), messages.len(), "{log}");
    for (line, message) in lines.iter().zip(&messages) {
        let (_, rest) = line.split_once(&format!(" {binary}[")).unwrap();
        let (_, rest) = rest.split_once("]: ").unwrap();
        let (_level, said) = rest.split_once(": ").unwrap();
        assert_eq!(said, *message, "{log}");
    }
}

#[test]
fn every_line_of_a_xen_run_names_its_vif_in_every_sink() {
    let rig = Rig::new("lnx", Vif::new(3, 0));
    let sandbox = Sandbox::new("lnx");
    let socket = rig.xs.socket.display().to_string();
    let mut env: Vec<(&str, String)> = libxl_env(&rig.xs.socket);
    env.retain(|(key, _)| *key != "XENSTORED_PATH");
    env.push(("XENSTORED_PATH", socket));
    env.push(("VIFKIT_LOG", "debug".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let args = ["online", "type_if=vif"];
    let out = sandbox.run(sandbox.command(&rig.host.ns.name, binary("vif-bridge"), &args, &env));
    assert_ok(&out);
    assert_eq!(rig.key("hotplug-status").as_deref(), Some("connected"));
    assert_every_line_names("vif-bridge", "vif3.0", &out, &sandbox, true);
    let err = text(&out.stderr);
    assert!(
        err.lines()
            .any(|l| l == "vif-bridge: vif3.0: attach vif3.0 to bridge xenbr0"),
        "{err}"
    );
}

#[test]
fn every_line_of_a_qemu_run_names_its_tap() {
    let host = Host::new("lnq");
    let sandbox = Sandbox::new("lnq");
    let dir = scratch("lnq");
    let config = dir.join("vifkit.conf");
    std::fs::write(&config, "").unwrap();
    let env = [
        ("VIFKIT_LOG", "debug"),
        ("VIFKIT_CONFIG", config.to_str().unwrap()),
    ];
    for script in ["qemu-ifup", "qemu-ifdown"] {
        let cmd = sandbox.command(&host.ns.name, binary(script), &["tap0", "xenbr0"], &env);
        let out = sandbox.run(cmd);
        assert_ok(&out);
        assert_every_line_names(script, "tap0", &out, &sandbox, false);
    }
}

#[test]
fn an_unfiltered_port_is_said_at_info_level() {
    // No B/ip: no addresses to filter on.
    let rig = Rig::new("unf", Vif::new(3, 0));
    let out = rig.run(&["online", "type_if=vif"], &[]);
    assert_ok(&out);
    let err = stderr(&out);
    let said = "vif-bridge: vif3.0: no antispoofing for vif3.0: its addresses are unknown (set ip= in the vif configuration)";
    assert!(err.lines().any(|l| l == said), "{err}");
    // Turned off by a [port] rule: the rule's file and line.
    rig.xs
        .write(&format!("{}/ip", rig.vif.backend()), "192.0.2.10");
    let dir = scratch("unf");
    let config = dir.join("vifkit.conf");
    std::fs::write(&config, "# web\n[port vif3.0]\nantispoof = no\n").unwrap();
    let config_env = [("VIFKIT_CONFIG", config.to_str().unwrap())];
    let out = rig.run(&["online", "type_if=vif"], &config_env);
    assert_ok(&out);
    let said = format!(
        "vif-bridge: vif3.0: antispoofing is off for vif3.0 ({}:2)",
        config.display()
    );
    assert!(stderr(&out).lines().any(|l| l == said), "{}", stderr(&out));
    // qemu taps alike.
    let out = run(rig
        .host
        .ns
        .exec()
        .args(["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"])
        .arg(format!("VIFKIT_CONFIG={}", config.display()))
        .arg(binary("qemu-ifup"))
        .args(["tap0", "xenbr0"]));
    assert_ok(&out);
    let said = format!(
        "qemu-ifup: tap0: no antispoofing for tap0: its addresses are unknown (set ip = ... in a [port tap0] section of {})",
        config.display()
    );
    assert!(stderr(&out).lines().any(|l| l == said), "{}", stderr(&out));
}

#[test]
fn a_missing_bridge_names_where_its_name_came_from() {
    let mut vif = Vif::new(3, 0);
    vif.bridge = None;
    let rig = Rig::new("mbr", vif);
    let cases = [
        (
            &["online", "type_if=vif", "bridge=br7"][..],
            &[][..],
            "bridge br7 does not exist (named by the script's bridge= argument)",
        ),
        (
            &["online", "type_if=vif"],
            &[("bridge", "br8")],
            "bridge br8 does not exist (named by the bridge environment variable)",
        ),
    ];
    for (args, env, sentence) in cases {
        let out = rig.run(args, env);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert_eq!(
            stderr(&out),
            format!("vif-bridge: error: vif3.0: {sentence}\n")
        );
        assert_eq!(rig.key("hotplug-error").as_deref(), Some(sentence));
        assert_eq!(rig.host.ns.master_of("vif3.0"), None);
    }
    // B/bridge, as libxl writes the vif configuration's bridge=, wins over both.
    rig.xs
        .write(&format!("{}/bridge", rig.vif.backend()), "br9");
    let out = rig.run(&["online", "type_if=vif", "bridge=xenbr0"], &[]);
    assert_eq!(
        stderr(&out),
        "vif-bridge: error: vif3.0: bridge br9 does not exist (named by backend/vif/3/0/bridge, the vif configuration's bridge=)\n"
    );

    let dir = scratch("mbr");
    let config = dir.join("vifkit.conf");
    std::fs::write(
        &config,
        "[port tap9]\nbridge = br0\n\n[port tap0]\nbridge = br9\n",
    )
    .unwrap();
    let qemu = |env: &[&str]| {
        run(rig
            .host
            .ns
            .exec()
            .args(["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"])
            .arg(format!("VIFKIT_CONFIG={}", config.display()))
            .args(env)
            .arg(binary("qemu-ifup"))
            .arg("tap0"))
    };
    let out = qemu(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "qemu-ifup: error: tap0: bridge br9 does not exist (named by {}:4)\n",
            config.display()
        )
    );
    let out = qemu(&["VIFKIT_BRIDGE=br6"]);
    assert_eq!(
        stderr(&out),
        "qemu-ifup: error: tap0: bridge br6 does not exist (named by VIFKIT_BRIDGE)\n"
    );
    assert_eq!(rig.host.ns.master_of("tap0"), None);
}

#[test]
fn a_route_line_naming_a_device_that_is_nowhere_is_warned_of_with_its_file_and_line() {
    let s = Seed21::new("rtyp");
    let routes = std::fs::read_to_string(s.dir.path.join("routes")).unwrap();
    let line = routes.lines().count() + 1;
    // A typo: the letter O for the zero of xen1.0.
    s.dir
        .write("routes", &format!("{routes}192.0.2.242 - - xen1.O\n"));
    let out = s.run(&["online", "type_if=vif"]);
    routed::assert_ok(&out);
    let warning = format!(
        "vif-route-ifup: warning: vif1.0: {}:{line}: route to 192.0.2.242/32 names xen1.O, which does not exist and has no ifcfg-xen1.O: no interface gets this route",
        s.dir.file("routes")
    );
    assert!(
        stderr(&out).lines().any(|l| l == warning),
        "{}",
        stderr(&out)
    );
    assert_eq!(s.key("hotplug-status").as_deref(), Some("connected"));
    // A device the directory describes is one that is not up yet: no warning.
    s.dir
        .write("ifcfg-xen1.O", "BOOTPROTO='static'\nSTARTMODE='hotplug'\n");
    let out = s.run(&["online", "type_if=vif"]);
    routed::assert_ok(&out);
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
}
