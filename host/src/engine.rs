//! The wasmtime set-up both hosts share: an engine whose guests can be
//! interrupted by epoch, the ticker that advances it, and the limits of
//! one instance.

use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// The most linear memory one instance may grow to: room for a 64 MiB
/// payload and its copy, not for a runaway guest.
pub const MAX_INSTANCE_MEMORY: usize = 512 << 20;

/// The epoch tick: deadlines are counted in these.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How many instances the signer's pooled engine holds at once; one more
/// fails to instantiate (an error, not a wait).
pub const MAX_POOLED_INSTANCES: u32 = 100;

/// The slots an engine allocates instances from, reserved once and reused:
/// at most `instances` at once (one more fails to instantiate). A slot's
/// memory stays mapped, and what an instance wrote in its first
/// `keep_resident` bytes is reset in place rather than handed back to the
/// kernel, so a fresh instance takes no page faults there, and dropping
/// one neither unmaps memory nor makes the other cores flush their TLBs
/// (BENCHMARKS.md). Where the kernel has `PAGEMAP_SCAN` (Linux 6.7), only
/// the pages written are reset; elsewhere all of the first `keep_resident`
/// bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstancePool {
    pub instances: u32,
    pub keep_resident: usize,
}

/// An engine; with `interruptible`, guests check the epoch in their loops
/// and a ticker advances it every [`EPOCH_TICK`] for as long as the engine
/// lives.
pub fn engine(interruptible: bool, slots: InstancePool) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(interruptible);
    // Names compiled guest code for `perf` (/tmp/perf-PID.map).
    if std::env::var_os("HOOKSIGN_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    let InstancePool {
        instances,
        keep_resident,
    } = slots;
    let mut pool = PoolingAllocationConfig::default();
    // A component holds a few core instances and tables, and one memory
    // (each of ours); an instance called asynchronously a stack of its own.
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(8))
        .total_tables(instances.saturating_mul(8))
        .total_memories(instances)
        .total_stacks(instances)
        .max_memory_size(MAX_INSTANCE_MEMORY)
        .linear_memory_keep_resident(keep_resident)
        .table_keep_resident(64 << 10)
        .pagemap_scan(Enabled::Auto);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
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
