//! The wasmtime set-up both hosts share: an engine whose guests can be
//! interrupted by epoch, the ticker that advances it, and the limits of
//! one instance.

use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// The most linear memory one instance may grow to: room for a 64 MiB
/// payload and its copy, not for a runaway guest.
pub const MAX_INSTANCE_MEMORY: usize = 512 << 20;

/// The epoch tick: deadlines are counted in these.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How many instances a pooled engine holds at once; one more fails to
/// instantiate (an error, not a wait).
pub const MAX_POOLED_INSTANCES: u32 = 100;

/// How an engine allocates instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// Memory mapped for each instance and unmapped after it.
    OnDemand,
    /// Slots reserved once and reused, the first 128 KiB of their memory
    /// kept resident and zeroed in place rather than handed back to the
    /// kernel: the signer's stack, data and first heap pages (its stack is
    /// 64 KiB, guest/signer/build.rs), so a fresh instance takes no page
    /// faults (BENCHMARKS.md). At most [`MAX_POOLED_INSTANCES`] at once.
    Pooled,
}

/// An engine; with `interruptible`, guests check the epoch in their loops
/// and a ticker advances it every [`EPOCH_TICK`] for as long as the engine
/// lives.
pub fn engine(interruptible: bool, allocation: Allocation) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(interruptible);
    // Names compiled guest code for `perf` (/tmp/perf-PID.map).
    if std::env::var_os("HOOKSIGN_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    if allocation == Allocation::Pooled {
        let mut pool = PoolingAllocationConfig::default();
        // A component holds a few core instances, tables and memories.
        pool.total_component_instances(MAX_POOLED_INSTANCES)
            .total_core_instances(MAX_POOLED_INSTANCES * 8)
            .total_tables(MAX_POOLED_INSTANCES * 8)
            .total_memories(MAX_POOLED_INSTANCES * 2)
            .max_memory_size(MAX_INSTANCE_MEMORY)
            .linear_memory_keep_resident(128 << 10)
            .table_keep_resident(64 << 10);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    let engine = Engine::new(&config)?;
    if interruptible {
        let weak = engine.weak();
        std::thread::spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
    }
    Ok(engine)
}

/// Whole ticks in a duration, at least one.
pub fn ticks(deadline: Duration) -> u64 {
    (deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
}

/// One instance's limits: [`MAX_INSTANCE_MEMORY`]; growing past it fails
/// the guest's allocation (a trap), not the host.
pub fn instance_limits() -> wasmtime::StoreLimits {
    wasmtime::StoreLimitsBuilder::new()
        .memory_size(MAX_INSTANCE_MEMORY)
        .instances(4)
        .build()
}
