use super::*;
use std::collections::HashMap;

fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Parsed> {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    parse_xen_call(&args, &|k| env.get(k).cloned())
}

fn run(args: &[&str], env: &[(&str, &str)]) -> XenCall {
    match parse(args, env).unwrap() {
        Parsed::Run(call) => call,
        other => panic!("expected a run, got {other:?}"),
    }
}

fn error(args: &[&str], env: &[(&str, &str)]) -> String {
    parse(args, env).unwrap_err().to_string()
}

const LIBXL: &[(&str, &str)] = &[
    ("script", "/etc/xen/scripts/vif-bridge"),
    ("XENBUS_TYPE", "vif"),
    ("XENBUS_BASE_PATH", "backend"),
    ("XENBUS_PATH", "backend/vif/3/0"),
    ("netdev", ""),
    ("vif", "vif3.0"),
];

#[test]
fn libxl_online() {
    let call = run(&["online", "type_if=vif"], LIBXL);
    assert_eq!(call.command, Command::Online);
    assert_eq!(call.type_if, TypeIf::Vif);
    assert_eq!(call.backend, "backend/vif/3/0");
    assert_eq!(call.vif, VifId { domid: 3, devid: 0 });
    assert_eq!(call.dev.as_str(), "vif3.0");
    assert!(!call.udev);
    assert_eq!(call.script.as_deref(), Some("/etc/xen/scripts/vif-bridge"));
    assert_eq!(
        call.overrides.netdev, None,
        "an empty netdev counts as unset"
    );
}

#[test]
fn missing_type_if_means_vif() {
    assert_eq!(run(&["offline"], LIBXL).type_if, TypeIf::Vif);
}

#[test]
fn absolute_xenbus_path() {
    let mut env = LIBXL.to_vec();
    env[3] = ("XENBUS_PATH", "/local/domain/0/backend/vif/12/1");
    let call = run(&["online"], &env);
    assert_eq!(
        call.vif,
        VifId {
            domid: 12,
            devid: 1
        }
    );
    assert_eq!(call.backend, "/local/domain/0/backend/vif/12/1");
}

#[test]
fn bad_xenbus_paths() {
    for bad in [
        "backend/vbd/3/0",
        "backend/vif/3",
        "backend/vif/x/0",
        "/backend/vif/3/0",
        "frontend/backend/vif/3/0",
        "backend/vif/3/0/",
    ] {
        let mut env = LIBXL.to_vec();
        env[3] = ("XENBUS_PATH", bad);
        assert_eq!(
            error(&["online"], &env),
            format!("invalid XENBUS_PATH {bad:?}: expected backend/vif/<domid>/<devid>")
        );
    }
}

#[test]
fn unknown_or_missing_command() {
    assert_eq!(
        error(&["start", "type_if=vif"], LIBXL),
        "invalid command \"start\": expected online, offline, add or remove"
    );
    assert_eq!(
        error(&["type_if=vif"], LIBXL),
        "no command given: expected online, offline, add or remove"
    );
    assert_eq!(
        error(&[], &[]),
        "no command given: expected online, offline, add or remove"
    );
}

#[test]
fn command_is_the_first_word_without_equals() {
    let call = run(&["bridge=br1", "online", "extra"], LIBXL);
    assert_eq!(call.command, Command::Online);
    assert_eq!(
        call.overrides.bridge,
        Some(GivenBridge::new("br1", BridgeOrigin::XenArgument))
    );
}

#[test]
fn filters_ignore_mismatched_pairs() {
    for (cmd, type_if) in [
        ("online", "tap"),
        ("offline", "tap"),
        ("add", "vif"),
        ("remove", "vif"),
    ] {
        let word = format!("type_if={type_if}");
        assert_eq!(
            parse(&[cmd, &word], &[]).unwrap(),
            Parsed::Ignore(format!("{cmd} with type_if={type_if} needs no action"))
        );
    }
}

#[test]
fn unknown_type_if_is_an_error() {
    assert_eq!(
        error(&["online", "type_if=vbd"], LIBXL),
        "invalid type_if=\"vbd\": expected vif or tap"
    );
}

#[test]
fn all_missing_variables_at_once() {
    assert_eq!(
        error(&["online"], &[]),
        "missing environment variables XENBUS_PATH, vif (is this run by libxl?)"
    );
    assert_eq!(
        error(&["online"], &[("XENBUS_PATH", "backend/vif/1/0")]),
        "missing environment variable vif (is this run by libxl?)"
    );
    assert_eq!(
        error(&["add", "type_if=tap"], &[]),
        "missing environment variable INTERFACE (is this run by libxl?)"
    );
}

#[test]
fn bad_interface_names_are_rejected() {
    let mut env = LIBXL.to_vec();
    env[5] = ("vif", "vif3.0/../x");
    assert_eq!(
        error(&["online"], &env),
        "vif: invalid interface name \"vif3.0/../x\": it contains '/'"
    );
}

#[test]
fn argv_beats_env() {
    let mut env = LIBXL.to_vec();
    env.push(("bridge", "from-env"));
    env.push(("ip", "10.0.0.1"));
    let call = run(&["online", "bridge=from-argv"], &env);
    assert_eq!(
        call.overrides.bridge,
        Some(GivenBridge::new("from-argv", BridgeOrigin::XenArgument))
    );
    assert_eq!(call.overrides.ip.as_deref(), Some("10.0.0.1"));
}

#[test]
fn words_are_never_evaluated() {
    let call = run(&["online", "bridge=$(reboot)", "PATH=/evil"], LIBXL);
    let bridge = call.overrides.bridge.map(|given| given.text);
    assert_eq!(bridge.as_deref(), Some("$(reboot)"));
    let call = run(&["online"], &[LIBXL, &[("bridge", "from-env")]].concat());
    assert_eq!(
        call.overrides.bridge,
        Some(GivenBridge::new("from-env", BridgeOrigin::XenEnvironment))
    );
}

#[test]
fn tap_with_xenbus_path() {
    let mut env = LIBXL.to_vec();
    env.push(("INTERFACE", "vif3.0-emu"));
    let call = run(&["add", "type_if=tap"], &env);
    assert_eq!(call.type_if, TypeIf::Tap);
    assert_eq!(call.dev.as_str(), "vif3.0-emu");
    assert_eq!(call.backend, "backend/vif/3/0");
}

#[test]
fn udev_tap_derives_the_dom0_path() {
    let call = run(
        &["add", "type_if=tap"],
        &[("INTERFACE", "vif7.2-emu"), ("UDEV_CALL", "1")],
    );
    assert_eq!(call.backend, "/local/domain/0/backend/vif/7/2");
    assert_eq!(call.vif, VifId { domid: 7, devid: 2 });
    assert!(call.udev);
}

#[test]
fn udev_tap_with_foreign_name() {
    assert_eq!(
        error(&["add", "type_if=tap"], &[("INTERFACE", "tap0")]),
        "cannot derive the Xen device from tap name tap0: expected vif<domid>.<devid>-emu"
    );
}

#[test]
fn a_detach_names_the_device_of_xenbus_path() {
    for (var, value, command, message) in [
        (
            "vif",
            "eth0",
            "offline",
            "vif=eth0 is not the device of backend/vif/3/0: expected vif3.0",
        ),
        (
            "vif",
            "vif3.1",
            "offline",
            "vif=vif3.1 is not the device of backend/vif/3/0: expected vif3.0",
        ),
        (
            "INTERFACE",
            "vif3.0",
            "remove",
            "INTERFACE=vif3.0 is not the tap of backend/vif/3/0: expected vif3.0-emu",
        ),
        (
            "INTERFACE",
            "eth0",
            "remove",
            "INTERFACE=eth0 is not the tap of backend/vif/3/0: expected vif3.0-emu",
        ),
    ] {
        let mut env = LIBXL.to_vec();
        env.retain(|(k, _)| *k != "vif");
        env.push(("vif", "vif3.0"));
        env.push((var, value));
        let type_if = if var == "vif" {
            "type_if=vif"
        } else {
            "type_if=tap"
        };
        assert_eq!(error(&[command, type_if], &env), message);
    }
}

#[test]
fn an_attach_leaves_the_device_check_to_the_port_so_xenstore_hears_of_it() {
    let mut env = LIBXL.to_vec();
    env[5] = ("vif", "eth0");
    let call = run(&["online", "type_if=vif"], &env);
    assert_eq!(
        call.check_dev(None).unwrap_err().to_string(),
        "vif=eth0 is not the device of backend/vif/3/0: expected vif3.0"
    );
    let web = IfName::new("web").unwrap();
    assert_eq!(
        call.check_dev(Some(&web)).unwrap_err().to_string(),
        "vif=eth0 is not the device of backend/vif/3/0: expected vif3.0 or web"
    );
    env.push(("INTERFACE", "web-emu"));
    let tap = run(&["add", "type_if=tap"], &env);
    assert!(
        tap.check_dev(Some(&web)).is_ok(),
        "qemu-xen given <vifname>-emu"
    );
    assert_eq!(
        tap.check_dev(None).unwrap_err().to_string(),
        "INTERFACE=web-emu is not the tap of backend/vif/3/0: expected vif3.0-emu"
    );
}

#[test]
fn netbacks_uevent_names_the_renamed_device() {
    let mut env = LIBXL.to_vec();
    env[5] = ("vif", "web");
    env.push(("UDEV_CALL", "1"));
    let call = run(&["offline"], &env);
    let web = IfName::new("web").unwrap();
    assert!(call.check_dev(Some(&web)).is_ok());
    assert!(call.check_dev(None).is_err());
    let mut absolute = LIBXL.to_vec();
    absolute[3] = ("XENBUS_PATH", "/local/domain/0/backend/vif/3/0");
    absolute[5] = ("vif", "eth0");
    assert_eq!(
        error(&["offline"], &absolute),
        "vif=eth0 is not the device of /local/domain/0/backend/vif/3/0: expected vif3.0"
    );
}

#[test]
fn a_failed_attach_call_is_reported_to_xenbus_path() {
    let report = |args: &[&str], env: &[(&str, &str)]| {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        report_path(&args, &|k| env.get(k).cloned())
    };
    let mut bad_vif = LIBXL.to_vec();
    bad_vif[5] = ("vif", "vif3.0/../x");
    assert!(parse(&["online", "type_if=vif"], &bad_vif).is_err());
    assert_eq!(
        report(&["online", "type_if=vif"], &bad_vif).as_deref(),
        Some("backend/vif/3/0")
    );
    assert_eq!(
        report(&["bridge=x", "add", "type_if=tap"], LIBXL).as_deref(),
        Some("backend/vif/3/0")
    );
    assert_eq!(
        report(&["offline"], &bad_vif),
        None,
        "a detach reports nothing"
    );
    assert_eq!(report(&["start"], LIBXL), None, "nor an invalid command");
    assert_eq!(report(&[], LIBXL), None);
    let mut bad_path = LIBXL.to_vec();
    bad_path[3] = ("XENBUS_PATH", "backend/vbd/3/0");
    assert_eq!(report(&["online"], &bad_path), None);
    assert_eq!(report(&["add", "type_if=tap"], &[("INTERFACE", "x")]), None);
}

#[test]
fn the_log_names_the_device_of_xenbus_path() {
    let subject = |args: &[&str], env: &[(&str, &str)]| {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        log_subject(&args, &|k| env.get(k).cloned())
    };
    assert_eq!(subject(&["online"], LIBXL).as_deref(), Some("vif3.0"));
    // A refused call names the vif libxl plugs, not the device it was wrongly given.
    let mut uplink = LIBXL.to_vec();
    uplink[5] = ("vif", "eth0");
    assert_eq!(subject(&["online"], &uplink).as_deref(), Some("vif3.0"));
    let tap = [("XENBUS_PATH", "/local/domain/0/backend/vif/12/1")];
    assert_eq!(
        subject(&["add", "type_if=tap"], &tap).as_deref(),
        Some("vif12.1-emu")
    );
    // udev's tap event has no XENBUS_PATH.
    let udev = [("INTERFACE", "vif4.0-emu"), ("UDEV_CALL", "1")];
    assert_eq!(
        subject(&["add", "type_if=tap"], &udev).as_deref(),
        Some("vif4.0-emu")
    );
    assert_eq!(subject(&["online"], &[("vif", "a/b")]), None);
    assert_eq!(subject(&["online"], &[]), None);
}
