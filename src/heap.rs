//! How the process's allocator hands memory back. glibc serves an allocation above its mmap
//! threshold (128 KiB at start) with its own mapping and unmaps it on free, but raises the
//! threshold to the size of every such block freed (up to 32 MiB): after one 16 MiB scrape
//! body was refused, later bodies and sample lists of that size come from the heap and stay
//! resident after they are freed. A hostile endpoint would so leave the daemon tens of MB
//! larger for good. [`return_large_blocks`] fixes the threshold, so that memory taken by a
//! large input goes back to the system with it (BENCHMARKS.md section 8.4 measures it).

/// The fixed mmap threshold: glibc's initial one. Blocks this large are rare here (a scrape
/// body or sample list of a large exposition), so the system calls they cost do not matter.
pub const MMAP_THRESHOLD: usize = 128 << 10;

/// Fixes glibc's mmap threshold at [`MMAP_THRESHOLD`] (a no-op with other C libraries).
/// Called once at start, before the runtime's threads exist.
pub fn return_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before other threads allocate.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
    }
}
