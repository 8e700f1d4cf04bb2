//! The binary's memory allocator on Linux: jemalloc, with every thread on one arena.
//!
//! A scan hands buffers from thread to thread. The HTTP client fills them on a runtime
//! worker, the decoder inflates on a blocking thread, and the tar walk frees the output on
//! whichever worker polls it. An allocator with an arena per thread, as glibc's malloc and
//! jemalloc's defaults have, keeps a freed buffer in the arena that allocated it, where the
//! threads of other arenas cannot reuse it. The peak then depends on how the threads happened
//! to interleave. With glibc, the peak on the benchmark's toolchain image was 5 to 13% over
//! the small image's in four benchmark runs, and runs of the same scan differed by about
//! 1 MiB. With one arena, any thread reuses what another freed, and the two peaks are within
//! 3% (docs/benchmarks.md).
//!
//! The arena is chosen at run time rather than through jemalloc's build-time configuration,
//! so `cargo install` from any directory, the Dockerfile and the GitHub Action all get it.

use tikv_jemalloc_ctl::{Access, AsName};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// How long freed pages stay mapped for reuse before they go back to the kernel. jemalloc's
/// default is ten seconds, longer than most scans, so a scan's pages would only go back at
/// exit. Of 100, 250, 500 and 1000 ms, 250 gave the lowest peak on the small benchmark image
/// and as low a peak as any on the toolchain image, with no more system time than the others.
const DIRTY_DECAY_MS: isize = 250;

/// The arena that the main thread starts on and that every runtime thread joins.
const SHARED_ARENA: u32 = 0;

/// Sets the decay of the shared arena. Call once at startup.
pub fn configure() {
    // An error means that this jemalloc lacks the setting. Its default then applies, which
    // only costs memory.
    let _ = decay_setting().as_str().name().write(DIRTY_DECAY_MS);
}

/// Returns the name of the shared arena's decay setting, NUL-terminated as jemalloc needs.
fn decay_setting() -> String {
    format!("arena.{SHARED_ARENA}.dirty_decay_ms\0")
}

/// Moves the calling thread to the shared arena. The runtime calls it as each of its worker
/// and blocking threads starts.
pub fn share_arena() {
    let _ = b"thread.arena\0".name().write(SHARED_ARENA);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configure_sets_arena_decay() {
        configure();
        let decay: isize = decay_setting().as_str().name().read().unwrap();
        assert_eq!(decay, DIRTY_DECAY_MS);
    }

    #[test]
    fn share_arena_moves_thread() {
        let arenas = std::thread::spawn(|| {
            let name = b"thread.arena\0".name();
            name.write(SHARED_ARENA + 1).unwrap();
            let before: u32 = name.read().unwrap();
            share_arena();
            let after: u32 = name.read().unwrap();
            (before, after)
        })
        .join()
        .unwrap();
        assert_eq!(arenas, (SHARED_ARENA + 1, SHARED_ARENA));
    }
}
