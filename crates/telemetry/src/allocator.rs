//! The processes' allocators: mimalloc for the producer's own memory, tuned
//! to give freed memory back at once, and glibc's malloc without fastbins
//! for the rest (all of librdkafka's, and the consumer's own).
//!
//! Each record the producer sends allocates small blocks on its reading
//! thread that librdkafka's delivery thread frees (headers, the value;
//! delivery futures too, until a ticket per record replaced them).
//! glibc's malloc spent a tenth of the producer's CPU there (`malloc_consolidate`, `_int_malloc`, `_int_free` under perf);
//! with mimalloc the producer's CPU per record fell 15 % and the source
//! half's rate rose 23 % (`make bench-compare`, BENCHMARKS.md). mimalloc's
//! defaults keep freed pages for a second, which raised the producer's peak
//! memory by half; [`tune`] gives them back at once. The consumer keeps
//! glibc's: with mimalloc its CPU did not fall and its memory rose by a
//! fifth.
//!
//! What stays on glibc's malloc still paid for `malloc_consolidate`: glibc
//! keeps small freed blocks in fastbins and walks all of them on every
//! large allocation or free (fetch buffers, a batch's column arrays), and
//! librdkafka frees its many small per-message blocks on threads other
//! than the ones that allocated them. [`without_fastbins`] turns fastbins
//! off (what `GLIBC_TUNABLES=glibc.malloc.mxfast=0` does).

/// The allocator the producer declares as its `#[global_allocator]`.
pub use mimalloc::MiMalloc as Allocator;

/// `mi_option_arena_eager_commit` in mimalloc v3's `mi_option_t` (its
/// documented default: 2, commit arenas eagerly on overcommit systems).
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
/// `mi_option_purge_delay` in mimalloc v3's `mi_option_t` (its default in
/// v3's option table: 1,000 ms before freed memory is returned).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Makes mimalloc return freed memory at once and commit memory only when
/// used. Call first thing in `main`, before the runtime's threads start.
pub fn tune() {
    // SAFETY: setting an option is a plain store mimalloc documents as
    // callable at any time; both indices are checked against their
    // defaults by this module's test.
    unsafe {
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
}

/// Turns glibc's fastbins off (`mallopt(M_MXFAST, 0)`): freed small blocks
/// go to glibc's ordinary bins, which large allocations do not have to
/// consolidate first. Call first thing in `main`, before other threads
/// start. Returns whether glibc accepted the setting.
pub fn without_fastbins() -> bool {
    // SAFETY: mallopt only changes the allocator's parameters, under its
    // own lock; M_MXFAST with 0 is a documented value (fastbins off).
    unsafe { libc::mallopt(libc::M_MXFAST, 0) == 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_accepts_fastbins_off() {
        assert!(without_fastbins());
    }

    #[test]
    fn the_option_indices_are_the_ones_documented() {
        // The defaults tell the options apart: were the enum to move, the
        // indices would name other options, with other defaults.
        // SAFETY: reading an option has no precondition.
        let (arena, purge) = unsafe {
            (libmimalloc_sys::mi_option_get(ARENA_EAGER_COMMIT), libmimalloc_sys::mi_option_get(PURGE_DELAY))
        };
        assert_eq!((arena, purge), (2, 1000), "mimalloc v3's defaults for arena_eager_commit and purge_delay");
    }
}
