//! The hooksign signing interface as a WebAssembly component: the exports
//! of `hooksign-signing` with what a component without the standard library
//! needs around them: an allocator, a panic handler (a trap) and the
//! canonical ABI's `cabi_realloc`. Without std, its formatting, wasi-libc's
//! start-up and WASI's command-line interfaces, the component is about 60 KB
//! smaller and imports only the clock and the random source.

#![no_std]
#![allow(unsafe_code)] // the allocator hook and the ABI's realloc are unsafe by nature

extern crate alloc;
// Linked for its `hooksign:webhooks/signing` exports.
extern crate hooksign_signing;

use core::alloc::Layout;
use core::arch::wasm32::{memory_grow, memory_size};
use core::ptr::NonNull;

use talc::base::Talc;
use talc::base::binning::Binning;
use talc::cell::TalcSyncCell;
use talc::wasm::WasmBinning;

#[global_allocator]
static ALLOCATOR: TalcSyncCell<InitialThenGrown, WasmBinning> =
    TalcSyncCell::new_wasm(InitialThenGrown {
        started: false,
        end: None,
    });

unsafe extern "C" {
    /// Where the linker put the end of the stack and the data: the
    /// initial memory past it is free.
    static __heap_base: u8;
}

const PAGE: usize = 65_536;

/// The heap's memory: first the initial memory's free tail, then pages
/// grown on demand, each extending the heap. (talc's own wasm source starts
/// at the first grown page, which leaves that tail unused and puts every
/// allocation past the 128 KiB the signer host keeps resident between
/// instances, so that each fresh instance page-faults.)
#[derive(Debug)]
struct InitialThenGrown {
    started: bool,
    end: Option<NonNull<u8>>,
}

// SAFETY: `acquire` only claims memory no one else uses (past the data, or
// just grown) and never allocates.
unsafe impl talc::source::Source for InitialThenGrown {
    fn acquire<B: Binning>(talc: &mut Talc<Self, B>, layout: Layout) -> Result<(), ()> {
        if !talc.source.started {
            talc.source.started = true;
            let base = (&raw const __heap_base).cast_mut();
            let free = (memory_size::<0>() * PAGE).saturating_sub(base.addr());
            // SAFETY: nothing lives between the heap base and the memory's end.
            talc.source.end = unsafe { talc.claim(base, free) };
            if talc.source.end.is_some() {
                return Ok(());
            }
        }
        // Enough for the chunk, its alignment and talc's bookkeeping.
        let wanted = layout
            .size()
            .saturating_add(layout.align() + 4 * talc::base::CHUNK_UNIT);
        let pages = wanted.div_ceil(PAGE);
        let previous = memory_grow::<0>(pages);
        if previous == usize::MAX {
            return Err(());
        }
        let grown = core::ptr::with_exposed_provenance_mut::<u8>(previous * PAGE);
        let grown_end = grown.wrapping_add(pages * PAGE);
        talc.source.end = match talc.source.end {
            // SAFETY: the heap ended where the memory did; the grown pages are new.
            Some(end) if end.as_ptr() == grown => Some(unsafe { talc.extend(end, grown_end) }),
            // SAFETY: the grown pages are new.
            _ => unsafe { talc.claim(grown, pages * PAGE) },
        };
        Ok(())
    }
}

/// Any panic traps: the host sees the call fail, the instance is not reused.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

/// The canonical ABI's allocation hook, through which a host writes a
/// call's arguments into this component's memory (wit-bindgen leaves it to
/// wasi-libc on wasm32-wasip2, which is not linked here).
///
/// # Safety
/// Called by the host under the canonical ABI's contract: `old` was
/// allocated with `old_len` and `align`, and `align` is a power of two.
#[unsafe(export_name = "cabi_realloc")]
unsafe extern "C" fn cabi_realloc(
    old: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    // Zero bytes take no memory: the ABI only needs an aligned address.
    if new_len == 0 {
        if old_len != 0 {
            // SAFETY: `old` came from this allocator with this layout.
            unsafe {
                alloc::alloc::dealloc(old, Layout::from_size_align_unchecked(old_len, align));
            }
        }
        return core::ptr::without_provenance_mut(align);
    }
    let pointer = if old_len == 0 {
        // SAFETY: the ABI's alignment is a power of two; the size is not zero.
        unsafe { alloc::alloc::alloc(Layout::from_size_align_unchecked(new_len, align)) }
    } else {
        // SAFETY: `old` came from this allocator with this layout; the new
        // size is not zero.
        unsafe {
            alloc::alloc::realloc(
                old,
                Layout::from_size_align_unchecked(old_len, align),
                new_len,
            )
        }
    };
    if pointer.is_null() {
        core::arch::wasm32::unreachable()
    }
    pointer
}
