//! End-to-end tests of the real `switchyard-dataplane` binary, driven
//! through `abi::Client` with peers on loopback UDP sockets. Every scenario
//! that touches packet I/O runs once per backend.

mod access;
mod alloc;
mod forwarding;
mod garbage;
mod harness;
mod memory;
mod reattach;
mod wakeup;
mod xdp;

/// Counts allocations per thread, so tests running in parallel do not see
/// each other's.
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    static LIVE_BYTES: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

/// Adds `delta` to this thread's live bytes.
fn count_bytes(delta: i64) {
    let _ = LIVE_BYTES.try_with(|c| c.set(c.get() + delta));
}

// SAFETY: forwards every call unchanged to the system allocator; the
// counter is a const-initialised thread-local Cell, which never allocates.
unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        count_bytes(layout.size() as i64);
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        count_bytes(-(layout.size() as i64));
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        count_bytes(new_size as i64 - layout.size() as i64);
        // SAFETY: same contract as the caller's.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Bytes this thread allocated and has not freed (a block it frees that
/// another thread allocated counts here too; the tests that read it keep
/// their objects on one thread).
pub fn live_bytes() -> i64 {
    LIVE_BYTES.with(|c| c.get())
}

/// Allocations made by this thread so far.
pub fn allocations() -> u64 {
    ALLOCATIONS.with(|c| c.get())
}
