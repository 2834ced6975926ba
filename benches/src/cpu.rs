//! CPU time of this process, in nanoseconds, summed over its threads.
//!
//! Read from `/proc/self/task/*/schedstat` (nanosecond resolution; `getrusage` would need
//! `unsafe` or another dependency, `/proc/self/stat` counts 10 ms ticks). Threads that have
//! exited are not counted, so the bench runtime keeps its threads alive for the whole run.
//! The broker's CPU (RabbitMQ is another process) is not included.

/// CPU nanoseconds used so far by the live threads of this process (0 where `/proc` is
/// unavailable, so the report shows no CPU figure rather than failing).
pub fn process_cpu_ns() -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
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
