//! CPU time and resident memory of a local process from Linux `/proc`, for the generator's
//! own CPU and for `--server-pid` (the node's `process_cpu_seconds_total` is exported in whole
//! seconds, too coarse for a 15 s capacity step).
//!
//! Reads files only; returns `None` off Linux, for a vanished process or unparsable text.

/// Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ, 100 on every Linux ABI).
const USER_HZ: f64 = 100.0;

/// User + system CPU-seconds of a process.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    parse_cpu_seconds(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Resident set size of a process, in bytes.
pub fn resident_bytes(pid: u32) -> Option<f64> {
    parse_resident_bytes(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

fn parse_cpu_seconds(stat: &str) -> Option<f64> {
    // The command name (field 2) may contain spaces and parentheses; fields after the last
    // ')' start at field 3 (state). utime and stime are fields 14 and 15.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) / USER_HZ)
}

fn parse_resident_bytes(status: &str) -> Option<f64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_a_tricky_command_name() {
        let stat = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 1000 200";
        assert_eq!(parse_cpu_seconds(stat), Some(3.0));
        assert_eq!(parse_cpu_seconds("garbage"), None);
        assert_eq!(parse_cpu_seconds("1 (x) S 1"), None);
    }

    #[test]
    fn parses_vmrss() {
        let status = "Name:\tcoil\nVmPeak:\t  9000 kB\nVmRSS:\t  2048 kB\n";
        assert_eq!(parse_resident_bytes(status), Some(2_097_152.0));
        assert_eq!(parse_resident_bytes("Name: x\n"), None);
    }

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).is_some());
        assert!(resident_bytes(pid).unwrap() > 0.0);
    }
}
