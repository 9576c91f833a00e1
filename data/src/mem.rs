//! Memory placement for large, randomly accessed arrays: the embedding tables, their optimizer moments
//! and the row → gradient-slot map in training, the HNSW graph's vectors and neighbour lists in search.
//!
//! A training step touches a few thousand random rows of each table, and a search at 1 M items a few
//! thousand random vectors. With 4 KiB pages every such row costs a TLB miss (and a page walk that
//! itself misses cache), which is what made a step on a 1 M-row catalogue slower than on a 10 k one.
//! Linux backs a region with 2 MiB transparent huge pages when asked with `madvise(MADV_HUGEPAGE)`
//! before it is first touched (this machine's policy is `madvise`), so a 256 MiB table needs 128 TLB
//! entries instead of 65,536. The advice is only a hint: where it is unavailable or refused, nothing
//! changes but speed.

/// Arrays smaller than this stay on normal pages (they fit the TLB reach anyway).
const HUGE_MIN_BYTES: usize = 2 << 20;

/// A vector of `n` copies of `value`, backed by huge pages where the kernel allows.
pub fn huge_vec<T: Copy>(n: usize, value: T) -> Vec<T> {
    huge_vec_from(n, std::iter::repeat(value))
}

/// A vector of the first `n` items of `it` (in order), backed by huge pages where the kernel allows.
pub fn huge_vec_from<T>(n: usize, it: impl Iterator<Item = T>) -> Vec<T> {
    let mut v = Vec::with_capacity(n);
    advise_huge(v.as_mut_ptr() as *mut u8, n * std::mem::size_of::<T>());
    v.extend(it.take(n));
    v
}

/// Copies `src` into a huge-page-backed vector (for tables read from a checkpoint).
pub fn huge_copy<T: Copy>(src: &[T]) -> Vec<T> {
    huge_vec_from(src.len(), src.iter().copied())
}

/// False when the environment sets `TWOTOWER_NO_HUGEPAGES` (any value): for side-by-side
/// measurements of what the pages are worth, and for hosts where huge pages are unwelcome.
pub fn huge_pages_wanted() -> bool {
    static WANTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WANTED.get_or_init(|| std::env::var_os("TWOTOWER_NO_HUGEPAGES").is_none())
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn advise_huge(ptr: *mut u8, len: usize) {
    const SYS_MADVISE: usize = 28;
    const MADV_HUGEPAGE: usize = 14;
    const PAGE: usize = 4096;
    if len < HUGE_MIN_BYTES || !huge_pages_wanted() {
        return;
    }
    let start = (ptr as usize).next_multiple_of(PAGE);
    let end = (ptr as usize + len) & !(PAGE - 1);
    if end <= start {
        return;
    }
    let _ret: isize;
    // SAFETY: madvise(2) with MADV_HUGEPAGE only changes how the kernel backs pages of a mapping this
    // process owns (the vector's allocation, page-aligned inward); it never changes their contents or
    // validity, and on failure it returns an error code, which is ignored (the advice is optional).
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") SYS_MADVISE as isize => _ret,
            in("rdi") start,
            in("rsi") end - start,
            in("rdx") MADV_HUGEPAGE,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn advise_huge(_ptr: *mut u8, _len: usize) {}

/// Hints that the `bytes` at `p` will be read soon (a no-op off x86-64).
#[inline(always)]
pub fn prefetch<T>(p: *const T, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = p as *const i8;
        let mut o = 0;
        while o < bytes {
            // SAFETY: prefetching is a hint and never faults, whatever the address.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(o)) };
            o += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (p, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_vectors_hold_what_was_asked() {
        let v = huge_vec(3 << 20, 1.5f32);
        assert_eq!(v.len(), 3 << 20);
        assert!(v.iter().all(|&x| x == 1.5));
        let w = huge_vec_from(5, 0u32..);
        assert_eq!(w, vec![0, 1, 2, 3, 4]);
        assert_eq!(huge_copy(&w), w);
        prefetch(w.as_ptr(), 64);
        prefetch(std::ptr::null::<f32>(), 256);
    }
}
