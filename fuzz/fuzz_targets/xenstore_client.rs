//! The xenstore client against a xenstored that answers with arbitrary bytes
//! (`vifkit::sys::xenstore::Client` over a unix socket): the replies are decoded, matched
//! to their requests by id, watch events and stale replies skipped, `ERROR` replies turned
//! into errno names, transactions retried on `EAGAIN`. Two operations run on one
//! connection, so the second meets whatever the first left unread.
//!
//! Input: one byte choosing the two operations, then the bytes the server sends (all at
//! once, then end of file; the client's requests are never read).

#![no_main]

use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vifkit::input::backend::BackendKeys;
use vifkit::sys::xenstore::Client;

const BACKEND: &str = "backend/vif/1/0";

fn socket_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("vifkit-fuzz-xenstore-{}.sock", std::process::id()))
    })
}

fn operate(client: &mut Client, op: u8) {
    let _ = match op % 8 {
        0 => BackendKeys::read(client, BACKEND).map(drop),
        1 => client.read(&format!("{BACKEND}/bridge")).map(drop),
        2 => client.read_optional(&format!("{BACKEND}/mtu")).map(drop),
        3 => client.directory("backend/vif/1").map(drop),
        4 => client.exists(&format!("{BACKEND}/frontend")).map(drop),
        5 => client.get_domain_path(1).map(drop),
        6 => client.write_hotplug_error(BACKEND, "attach vif1.0 to bridge xenbr0: failed"),
        _ => client.transaction(|tx| {
            let _ = tx.read_optional("/local/domain/1/device/vif/0/mtu")?;
            tx.write("/local/domain/1/device/vif/0/mtu", "1500")
        }),
    };
}

fuzz_target!(|data: &[u8]| {
    let Some((&ops, reply)) = data.split_first() else {
        return;
    };
    // A socket file only for the moment of connecting: nothing is left behind.
    let path = socket_path();
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path).expect("bind the fake xenstored");
    let client = Client::connect_path(path);
    let (mut server, _) = listener.accept().expect("accept");
    let _ = std::fs::remove_file(path);
    let mut client = client.expect("connect to the fake xenstored");
    // The socket buffer holds a whole reply stream of this size; then end of file.
    let reply = &reply[..reply.len().min(64 * 1024)];
    std::io::Write::write_all(&mut server, reply).expect("send the replies");
    server
        .shutdown(std::net::Shutdown::Write)
        .expect("shutdown");
    operate(&mut client, ops);
    operate(&mut client, ops / 8);
    drop(client);
    drop(server);
});
