//! Xenstore wire protocol: a native client and a small test server.
