//! Logs go to stderr (xl's or qemu's log), to syslog facility daemon tagged with the binary
//! name, and (Xen binaries only) to /var/log/xen/xen-hotplug.log when that directory exists.
//! stdout stays clean. A hotplug run's records name its vif or tap first (`vif3.0: MESSAGE`),
//! since many runs share every sink.
//!
//! No log sink can hold a run up or garble another run's lines: each record is formatted
//! once, in memory, and handed to each sink in one write (see [`sinks`] for how each one
//! avoids waiting). A sink that cannot be opened is skipped (`VIFKIT_LOG=debug` says why); a
//! record a sink does not take is dropped and counted, and when the run ends the counts are
//! logged as one warning per sink, to every sink that still takes records.

mod sinks;

use std::borrow::Cow;
use std::path::Path;
use std::sync::OnceLock;
use std::time::SystemTime;

use log::{Level, Log, Metadata, Record};

use sinks::{LogFile, Stderr, Syslog};

pub const XEN_LOG_DIR: &str = "/var/log/xen";
const XEN_LOG_FILE: &str = "xen-hotplug.log";
const SYSLOG_SOCKET: &str = "/dev/log";
const FACILITY_DAEMON: u8 = 3;

struct HotplugLogger {
    tag: String,
    /// The vif or tap a hotplug run is about: every record's message starts with it.
    port: Option<String>,
    pid: u32,
    filter: env_filter::Filter,
    stderr: Stderr,
    syslog: Option<Syslog>,
    file: Option<LogFile>,
}

static LOGGER: OnceLock<HotplugLogger> = OnceLock::new();

/// Installs the logger (once; later calls do nothing); `VIFKIT_LOG` takes env_logger's filter
/// syntax (default `info`).
pub fn init(tag: &str, xen_log: bool) {
    init_for_port(tag, xen_log, None);
}

/// [`init`] with another default filter than `info` (`VIFKIT_LOG` still wins).
pub fn init_with_default(tag: &str, xen_log: bool, default_filter: &str) {
    install(tag, xen_log, None, default_filter);
}

/// [`init`] for a hotplug run about `port` (`vif3.0`, `tap0`): each record names it first,
/// `vif3.0: MESSAGE`, in every sink, since many runs share them (xl's log of a guest with
/// several vifs, syslog, xen-hotplug.log).
pub fn init_for_port(tag: &str, xen_log: bool, port: Option<&str>) {
    install(tag, xen_log, port, "info");
}

fn install(tag: &str, xen_log: bool, port: Option<&str>, default_filter: &str) {
    let mut skipped = Vec::new();
    let syslog = Syslog::connect(SYSLOG_SOCKET)
        .map_err(|err| skipped.push(format!("no syslog at {SYSLOG_SOCKET}: {err}")))
        .ok();
    let log_dir = Path::new(XEN_LOG_DIR);
    let file = (xen_log && log_dir.is_dir())
        .then(|| {
            let path = log_dir.join(XEN_LOG_FILE);
            LogFile::open(&path)
                .map_err(|err| skipped.push(format!("not logging to {}: {err}", path.display())))
                .ok()
        })
        .flatten();
    let spec = std::env::var("VIFKIT_LOG").unwrap_or_else(|_| default_filter.to_owned());
    let logger = HotplugLogger {
        tag: tag.to_owned(),
        port: port.map(str::to_owned),
        pid: std::process::id(),
        filter: env_filter::Builder::new().parse(&spec).build(),
        stderr: Stderr::new(),
        syslog,
        file,
    };
    if LOGGER.set(logger).is_err() {
        return;
    }
    let Some(logger) = LOGGER.get() else { return };
    if log::set_logger(logger).is_err() {
        return;
    }
    log::set_max_level(logger.filter.filter());
    // SAFETY: `atexit` only records the address of a function that takes and returns
    // nothing; that function reads the logger's static and writes to its sinks.
    unsafe { nix::libc::atexit(report_drops_at_exit) };
    for why in skipped {
        log::debug!("{why}");
    }
}

/// Runs when `main` returns (or `exit` is called): the records the sinks dropped.
extern "C" fn report_drops_at_exit() {
    if let Some(logger) = LOGGER.get() {
        logger.report_drops();
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

/// One record as each sink gets it. The message is one line: control characters (a newline
/// in a hook's or a daemon's text) are written as Rust escapes (`\n`, `\u{1b}`).
struct Line<'a> {
    tag: &'a str,
    pid: u32,
    level: Level,
    message: Cow<'a, str>,
}

impl<'a> Line<'a> {
    fn new(tag: &'a str, pid: u32, level: Level, message: &'a str) -> Line<'a> {
        let message = if message.contains(char::is_control) {
            message
                .chars()
                .map(|c| {
                    if c.is_control() {
                        c.escape_debug().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect::<String>()
                .into()
        } else {
            message.into()
        };
        Line {
            tag,
            pid,
            level,
            message,
        }
    }

    /// `vif-bridge: attach vif3.0 to bridge xenbr0`; other levels than info are named:
    /// `vif-bridge: error: bridge xenbr7 does not exist`.
    fn stderr(&self) -> String {
        match self.level {
            Level::Info => format!("{}: {}\n", self.tag, self.message),
            level => format!("{}: {}: {}\n", self.tag, level_word(level), self.message),
        }
    }

    /// `<30>vif-bridge[1234]: attach vif3.0 to bridge xenbr0` (the daemon stamps the time).
    fn syslog(&self) -> String {
        let pri = FACILITY_DAEMON * 8 + syslog_severity(self.level);
        format!("<{pri}>{}[{}]: {}", self.tag, self.pid, self.message)
    }

    /// `2026-11-23T20:14:16.123Z vif-bridge[1234]: info: attach vif3.0 to bridge xenbr0`.
    fn file(&self, at: SystemTime) -> String {
        format!(
            "{} {}[{}]: {}: {}\n",
            utc_timestamp(at),
            self.tag,
            self.pid,
            level_word(self.level),
            self.message
        )
    }
}

impl HotplugLogger {
    fn emit(&self, level: Level, message: &str) {
        let message = about(self.port.as_deref(), message);
        let line = Line::new(&self.tag, self.pid, level, &message);
        self.stderr.write(line.stderr().as_bytes());
        // Raw netlink traces stay on stderr: they would flood syslog and the shared file.
        if level == Level::Trace {
            return;
        }
        if let Some(syslog) = &self.syslog {
            syslog.send(line.syslog().as_bytes());
        }
        if let Some(file) = &self.file {
            file.write(&line.file(SystemTime::now()));
        }
    }

    /// One warning per sink that dropped records, to every sink (the one that dropped them
    /// may have room again).
    fn report_drops(&self) {
        let mut sinks = vec![("stderr".to_owned(), &self.stderr.drops)];
        if let Some(syslog) = &self.syslog {
            sinks.push((format!("syslog ({})", syslog.path), &syslog.drops));
        }
        if let Some(file) = &self.file {
            sinks.push((file.path.display().to_string(), &file.drops));
        }
        // All counts first: what the reports themselves drop is not reported.
        let reports: Vec<String> = sinks
            .iter()
            .filter_map(|(name, drops)| {
                let (count, why) = drops.take()?;
                Some(drop_report(name, count, &why))
            })
            .collect();
        for report in reports {
            self.emit(Level::Warn, &report);
        }
    }
}

/// `PORT: MESSAGE`, or the message alone when the run is about no port.
fn about<'a>(port: Option<&str>, message: &'a str) -> Cow<'a, str> {
    match port {
        Some(port) => format!("{port}: {message}").into(),
        None => message.into(),
    }
}

fn drop_report(sink: &str, count: u32, why: &std::io::Error) -> String {
    let records = if count == 1 { "record" } else { "records" };
    format!("{count} log {records} dropped by {sink}: {why}")
}

impl Log for HotplugLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.filter.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if self.filter.matches(record) {
            self.emit(record.level(), &record.args().to_string());
        }
    }

    fn flush(&self) {}
}

/// RFC 3339 in UTC, to the millisecond.
pub fn utc_timestamp(time: SystemTime) -> String {
    let at = jiff::Timestamp::try_from(time).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    format!("{at:.3}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn timestamps() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_464_856_123);
        assert_eq!(utc_timestamp(t), "2026-11-23T20:14:16.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(utc_timestamp(leap), "2000-02-29T00:00:00.000Z");
        // Milliseconds are cut, not rounded (a record never claims a later time).
        let late = UNIX_EPOCH + Duration::from_nanos(1_999_999_999);
        assert_eq!(utc_timestamp(late), "1970-01-01T00:00:01.999Z");
    }

    #[test]
    fn each_sink_gets_its_own_line() {
        let at = UNIX_EPOCH + Duration::from_millis(1_795_464_856_123);
        let info = Line::new(
            "vif-bridge",
            1234,
            Level::Info,
            "attach vif3.0 to bridge xenbr0",
        );
        assert_eq!(
            info.stderr(),
            "vif-bridge: attach vif3.0 to bridge xenbr0\n"
        );
        assert_eq!(
            info.syslog(),
            "<30>vif-bridge[1234]: attach vif3.0 to bridge xenbr0"
        );
        assert_eq!(
            info.file(at),
            "2026-11-23T20:14:16.123Z vif-bridge[1234]: info: attach vif3.0 to bridge xenbr0\n"
        );

        let error = Line::new(
            "vif-bridge",
            7,
            Level::Error,
            "bridge xenbr7 does not exist",
        );
        assert_eq!(
            error.stderr(),
            "vif-bridge: error: bridge xenbr7 does not exist\n"
        );
        assert_eq!(
            error.syslog(),
            "<27>vif-bridge[7]: bridge xenbr7 does not exist"
        );
        assert_eq!(
            error.file(at),
            "2026-11-23T20:14:16.123Z vif-bridge[7]: error: bridge xenbr7 does not exist\n"
        );

        let warn = Line::new("qemu-ifup", 9, Level::Warn, "w");
        assert_eq!(warn.stderr(), "qemu-ifup: warning: w\n");
        assert_eq!(warn.syslog(), "<28>qemu-ifup[9]: w");
        let debug = Line::new("vifkit", 9, Level::Debug, "d");
        assert_eq!(debug.stderr(), "vifkit: debug: d\n");
        assert_eq!(debug.syslog(), "<31>vifkit[9]: d");
        assert_eq!(
            debug.file(UNIX_EPOCH),
            "1970-01-01T00:00:00.000Z vifkit[9]: debug: d\n"
        );
    }

    #[test]
    fn every_sink_names_the_port_first() {
        let message = about(Some("vif3.0"), "attach vif3.0 to bridge xenbr0");
        let info = Line::new("vif-bridge", 1234, Level::Info, &message);
        assert_eq!(
            info.stderr(),
            "vif-bridge: vif3.0: attach vif3.0 to bridge xenbr0\n"
        );
        assert_eq!(
            info.syslog(),
            "<30>vif-bridge[1234]: vif3.0: attach vif3.0 to bridge xenbr0"
        );
        assert_eq!(
            info.file(UNIX_EPOCH),
            "1970-01-01T00:00:00.000Z vif-bridge[1234]: info: vif3.0: attach vif3.0 to bridge xenbr0\n"
        );
        let message = about(Some("tap0"), "bridge br9 does not exist");
        let error = Line::new("qemu-ifup", 7, Level::Error, &message);
        assert_eq!(
            error.stderr(),
            "qemu-ifup: error: tap0: bridge br9 does not exist\n"
        );
        assert_eq!(about(None, "no port"), "no port");
    }

    #[test]
    fn a_message_stays_on_one_line() {
        let line = Line::new(
            "vif-bridge",
            1,
            Level::Warn,
            "hook said: one\ntwo\r\tthree \u{1b}[31mred\u{85} é",
        );
        assert_eq!(
            line.stderr(),
            "vif-bridge: warning: hook said: one\\ntwo\\r\\tthree \\u{1b}[31mred\\u{85} é\n"
        );
        assert_eq!(
            line.file(UNIX_EPOCH).lines().count(),
            1,
            "{}",
            line.file(UNIX_EPOCH)
        );
        assert!(!line.syslog().contains('\n'));
    }

    #[test]
    fn drops_are_reported_with_their_count_and_reason() {
        let eagain = std::io::Error::from_raw_os_error(nix::libc::EAGAIN);
        assert_eq!(
            drop_report("syslog (/dev/log)", 7, &eagain),
            "7 log records dropped by syslog (/dev/log): \
             Resource temporarily unavailable (os error 11)"
        );
        assert_eq!(
            drop_report("/var/log/xen/xen-hotplug.log", 1, &eagain),
            "1 log record dropped by /var/log/xen/xen-hotplug.log: \
             Resource temporarily unavailable (os error 11)"
        );
    }
}
