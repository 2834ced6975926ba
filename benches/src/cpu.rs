//! CPU time of this process, in nanoseconds, summed over its threads.
//!
//! Read from `/proc/self/task/*/schedstat` (nanosecond resolution; `getrusage` would need
//! `unsafe` or another dependency, `/proc/self/stat` counts 10 ms ticks). Threads that have
//! exited are not counted, so the bench runtime keeps its threads alive for the whole run.
//! The broker's CPU (RabbitMQ is another process) is counted apart, by [`broker_cpu_ns`],
//! when it runs on the same machine.

/// CPU nanoseconds used so far by the live threads of this process (0 where `/proc` is
/// unavailable, so the report shows no CPU figure rather than failing).
pub fn process_cpu_ns() -> u64 {
    threads_cpu_ns(std::path::Path::new("/proc/self"))
}

/// CPU nanoseconds used so far by the live threads of process `pid` (another process on
/// this machine, e.g. a Python baseline), or `None` when it is not visible (gone, no `/proc`).
pub fn pid_cpu_ns(pid: u32) -> Option<u64> {
    let dir = std::path::PathBuf::from(format!("/proc/{pid}"));
    dir.join("task").is_dir().then(|| threads_cpu_ns(&dir))
}

/// CPU nanoseconds used so far by the live threads of the process at `proc_dir`.
fn threads_cpu_ns(proc_dir: &std::path::Path) -> u64 {
    let Ok(dir) = std::fs::read_dir(proc_dir.join("task")) else {
        return 0;
    };
    dir.flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// True when [`process_cpu_ns`] gives real figures here.
pub fn available() -> bool {
    process_cpu_ns() > 0
}

/// CPU nanoseconds used so far by every RabbitMQ node on this machine (Erlang's `beam.smp`
/// processes, summed), or `None` when none is visible (a remote broker, or no `/proc`).
///
/// On a loopback broker its CPU is part of what a call costs: on a 2-core machine it
/// competes with the client and server for the same cores.
pub fn broker_cpu_ns() -> Option<u64> {
    let dir = std::fs::read_dir("/proc").ok()?;
    let mut total = None;
    for entry in dir.flatten() {
        let path = entry.path();
        let is_pid = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
        if !is_pid {
            continue;
        }
        let beam =
            std::fs::read_to_string(path.join("comm")).is_ok_and(|c| c.trim_end() == "beam.smp");
        if beam {
            *total.get_or_insert(0) += threads_cpu_ns(&path);
        }
    }
    total
}
