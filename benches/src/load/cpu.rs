//! CPU time of server processes, read from `/proc` so a run can report what
//! each forwarded packet cost the SFU.

use std::path::Path;

/// Nanoseconds of CPU that every thread of process `pid` has run, from
/// `/proc/<pid>/task/*/schedstat` (`None` when the process is gone).
/// Threads that ended are not counted: measure long-lived servers.
pub fn process_ns(pid: u32) -> Option<u64> {
    process_ns_at(Path::new("/proc"), pid)
}

fn process_ns_at(proc_root: &Path, pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(proc_root.join(pid.to_string()).join("task")).ok()?;
    let mut total = 0u64;
    for task in tasks.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue; // the thread ended meanwhile
        };
        total += text
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Some(total)
}

/// CPU nanoseconds of all `pids` together (`None` if any is gone).
pub fn total_ns(pids: &[u32]) -> Option<u64> {
    pids.iter().map(|&p| process_ns(p)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_the_threads_of_a_process() {
        let root = std::env::temp_dir().join(format!("swyd-cpu-{}", std::process::id()));
        for (tid, stat) in [(10, "1500 20 3\n"), (11, "250 0 1\n")] {
            let dir = root.join("10/task").join(tid.to_string());
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("schedstat"), stat).unwrap();
        }
        assert_eq!(process_ns_at(&root, 10), Some(1750));
        assert_eq!(process_ns_at(&root, 99), None);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn this_process_has_used_some_cpu() {
        let me = std::process::id();
        let a = process_ns(me).unwrap();
        let (mut x, t0) = (0u64, std::time::Instant::now());
        while t0.elapsed() < std::time::Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
        }
        assert!(process_ns(me).unwrap() > a);
    }
}
