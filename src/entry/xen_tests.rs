use super::*;

#[test]
fn a_backends_script_key_names_the_mode_by_its_file_name() {
    assert_eq!(
        XenScript::from_script("/etc/xen/scripts/vif-bridge"),
        Some(XenScript::Bridge)
    );
    assert_eq!(XenScript::from_script("vif-route"), Some(XenScript::Route));
    assert_eq!(
        XenScript::from_script("/usr/libexec/vifkit/vif-route-ifup"),
        Some(XenScript::RouteIfup)
    );
    assert_eq!(XenScript::from_script("vif-nat"), Some(XenScript::Nat));
    assert_eq!(
        XenScript::from_script("vif-openvswitch"),
        Some(XenScript::OpenVswitch)
    );
    assert_eq!(XenScript::from_script("/etc/xen/scripts/vif-setup"), None);
    assert_eq!(XenScript::from_script(""), None);
}

#[test]
fn vifkit_ifup_native_by_default_system_from_path_else_one_sentence() {
    assert_eq!(ifup_programs("", OsStr::new("/nonexistent")).unwrap(), None);
    assert_eq!(ifup_programs("native", OsStr::new("")).unwrap(), None);
    assert_eq!(
        ifup_programs("yes", OsStr::new(""))
            .unwrap_err()
            .to_string(),
        "VIFKIT_IFUP=\"yes\": expected system or native"
    );
    assert_eq!(
        ifup_programs("system", OsStr::new("/nonexistent"))
            .unwrap_err()
            .to_string(),
        "VIFKIT_IFUP=system, but no ifup and ifdown were found in PATH (/nonexistent)"
    );
    let dir = std::env::temp_dir().join(format!("vifkit-ifup-{}", std::process::id()));
    let sbin = dir.join("sbin");
    std::fs::create_dir_all(&sbin).unwrap();
    std::fs::write(sbin.join("ifup"), "").unwrap();
    let path = std::env::join_paths([dir.join("bin"), sbin.clone()]).unwrap();
    assert!(ifup_programs("system", &path).is_err(), "ifdown is missing");
    std::fs::write(sbin.join("ifdown"), "").unwrap();
    let found = ifup_programs("system", &path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(found, Some((sbin.join("ifup"), sbin.join("ifdown"))));
}
