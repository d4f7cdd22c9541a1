//! Logs go to stderr (xl's or qemu's log), to syslog facility daemon tagged with the binary
//! name, and (Xen binaries only) to /var/log/xen/xen-hotplug.log when that directory exists. A log sink that
//! fails is skipped, never fatal. stdout stays clean.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use log::{Level, Log, Metadata, Record};

pub const XEN_LOG_DIR: &str = "/var/log/xen";
const SYSLOG_SOCKET: &str = "/dev/log";
const FACILITY_DAEMON: u8 = 3;

struct HotplugLogger {
    tag: String,
    pid: u32,
    stderr: env_logger::Logger,
    syslog: Option<UnixDatagram>,
    file: Option<Mutex<File>>,
}

/// Installs the logger; `VIFKIT_LOG` takes env_logger filter syntax (default `info`).
pub fn init(tag: &str, xen_log: bool) {
    let stderr_tag = tag.to_owned();
    let stderr =
        env_logger::Builder::from_env(env_logger::Env::new().filter_or("VIFKIT_LOG", "info"))
            .format(move |buf, record| match record.level() {
                Level::Info => writeln!(buf, "{stderr_tag}: {}", record.args()),
                level => writeln!(
                    buf,
                    "{stderr_tag}: {}: {}",
                    level_word(level),
                    record.args()
                ),
            })
            .build();
    let syslog = UnixDatagram::unbound()
        .and_then(|sock| sock.connect(SYSLOG_SOCKET).map(|()| sock))
        .ok();
    let file = (xen_log && std::path::Path::new(XEN_LOG_DIR).is_dir())
        .then(|| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(format!("{XEN_LOG_DIR}/xen-hotplug.log"))
                .ok()
        })
        .flatten()
        .map(Mutex::new);
    let max = stderr.filter();
    let logger = HotplugLogger {
        tag: tag.to_owned(),
        pid: std::process::id(),
        stderr,
        syslog,
        file,
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(max);
    }
}

fn level_word(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warn => "warning",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Trace => "trace",
    }
}

fn syslog_severity(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

impl Log for HotplugLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.stderr.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.stderr.matches(record) {
            return;
        }
        self.stderr.log(record);
        // Raw netlink traces stay on stderr: they would flood syslog.
        if record.level() == Level::Trace {
            return;
        }
        if let Some(sock) = &self.syslog {
            let pri = FACILITY_DAEMON * 8 + syslog_severity(record.level());
            let _ = sock
                .send(format!("<{pri}>{}[{}]: {}", self.tag, self.pid, record.args()).as_bytes());
        }
        if let Some(Ok(mut file)) = self.file.as_ref().map(Mutex::lock) {
            let _ = writeln!(
                file,
                "{} {}[{}]: {}: {}",
                utc_timestamp(SystemTime::now()),
                self.tag,
                self.pid,
                level_word(record.level()),
                record.args()
            );
        }
    }

    fn flush(&self) {}
}

/// RFC 3339 in UTC, without pulling a date crate into a hot path binary.
pub fn utc_timestamp(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_464_856_123);
        assert_eq!(utc_timestamp(t), "2026-11-23T20:14:16.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(utc_timestamp(leap), "2000-02-29T00:00:00.000Z");
    }
}
