//! The wasmtime set-up both hosts share: an engine whose guests can be
//! interrupted by epoch, the ticker that advances it, and the limits of
//! one instance.

use std::time::Duration;

use wasmtime::{Config, Engine};

/// The most linear memory one instance may grow to: room for a 64 MiB
/// payload and its copy, not for a runaway guest.
pub const MAX_INSTANCE_MEMORY: usize = 512 << 20;

/// The epoch tick: deadlines are counted in these.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// An engine; with `interruptible`, guests check the epoch in their loops
/// and a ticker advances it every [`EPOCH_TICK`] for as long as the engine
/// lives.
pub fn engine(interruptible: bool) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(interruptible);
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
