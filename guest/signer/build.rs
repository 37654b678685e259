//! Link arguments for the signer component.
fn main() {
    // A 64 KiB shadow stack instead of the toolchain's 1 MiB. Its deepest
    // call (Ed25519) needs a few KiB; a small stack keeps the memory a call
    // touches within the first 128 KiB, which the signer host keeps resident
    // between instances (host/src/engine.rs), so a fresh instance takes no
    // page faults. Overflowing it traps (the stack is first in memory), it
    // never corrupts data.
    println!("cargo:rustc-link-arg-cdylib=-zstack-size=65536");
    // `memcpy`, `memcmp` and `memset` from wasi-libc: without std nothing
    // else links them (only what is used is kept).
    println!("cargo:rustc-link-arg-cdylib=-lc");
}
