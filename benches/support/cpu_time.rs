//! CPU time of the measuring thread, for benches that report CPU per item rather than wall time
//! (the machines they run on are shared, so wall time includes other tenants' work).

use std::time::{Duration, Instant};

/// CPU time this thread has run, if the kernel tells.
pub(crate) fn thread_cpu_time() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok().map(Duration::from_nanos)
}

/// Runs `f` `iters` times and returns the CPU time that took (wall time as a fallback).
///
/// The kernel updates a thread's CPU time at scheduler ticks, so the `iters` runs are repeated
/// until at least 100 ms have passed and the CPU time is divided by the number of rounds.
pub(crate) fn measure(iters: u64, mut f: impl FnMut()) -> Duration {
    let (cpu0, wall0) = (thread_cpu_time(), Instant::now());
    let mut rounds = 0u32;
    while rounds == 0 || wall0.elapsed() < Duration::from_millis(100) {
        for _ in 0..iters {
            f();
        }
        rounds += 1;
    }
    match (cpu0, thread_cpu_time()) {
        (Some(a), Some(b)) if b > a => b.saturating_sub(a) / rounds,
        _ => wall0.elapsed() / rounds,
    }
}
