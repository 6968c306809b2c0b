//! One thread cap and one lazily built thread pool for all of embedforge's data-parallel work.
//!
//! The cap comes from [`set_num_threads`], else from the `EMBEDFORGE_NUM_THREADS` environment
//! variable, else one thread per core. After [`mark_forked`] everything runs on the calling
//! thread: a forked child inherits the pool's bookkeeping but not its threads, so handing it
//! work would wait forever.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;

use crate::host_threads;

/// Name of the environment variable that caps the number of threads (0 or unset: one per core).
pub const NUM_THREADS_ENV: &str = "EMBEDFORGE_NUM_THREADS";

/// `usize::MAX` means "never set: use the environment variable".
static REQUESTED: AtomicUsize = AtomicUsize::new(usize::MAX);
static FORKED: AtomicBool = AtomicBool::new(false);
static POOL: Mutex<Option<(usize, Arc<rayon::ThreadPool>)>> = Mutex::new(None);

/// Caps the threads used by embedforge (0 = one per core). Takes effect for the next batch.
pub fn set_num_threads(n: usize) {
    REQUESTED.store(n, Ordering::SeqCst);
}

/// The number of threads the next batch will use (1 in a forked child).
pub fn num_threads() -> usize {
    if is_forked() {
        return 1;
    }
    let requested = match REQUESTED.load(Ordering::SeqCst) {
        usize::MAX => env_num_threads(),
        n => n,
    };
    if requested == 0 {
        core_count()
    } else {
        requested
    }
}

/// The machine's core count (as the process may use them), read once: on Linux
/// `available_parallelism` reads cgroup files on every call, which costs more than a small batch.
fn core_count() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Makes all later work in this process single-threaded.
///
/// Meant to be called in the child right after `fork()` (for example from a `pthread_atfork`
/// child handler): it only stores flags, so it is async-signal-safe in practice. It also turns
/// off the `tokenizers` crate's own parallelism for the same reason.
pub fn mark_forked() {
    FORKED.store(true, Ordering::SeqCst);
    tokenizers::utils::parallelism::set_parallelism(false);
}

/// Whether [`mark_forked`] has been called in this process.
pub fn is_forked() -> bool {
    FORKED.load(Ordering::SeqCst)
}

/// The value of `EMBEDFORGE_NUM_THREADS`, read once; unparsable values count as unset.
fn env_num_threads() -> usize {
    static ENV: OnceLock<usize> = OnceLock::new();
    *ENV.get_or_init(|| {
        std::env::var(NUM_THREADS_ENV)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    })
}

/// The shared pool sized for `threads`, rebuilt when the cap changed; `None` if threads
/// cannot be spawned, in which case callers fall back to the current thread.
fn pool(threads: usize) -> Option<Arc<rayon::ThreadPool>> {
    // A poisoned lock only means another thread panicked while swapping pools; the
    // slot is still a valid Option, so keep going with it.
    let mut slot = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((n, pool)) = slot.as_ref() {
        if *n == threads {
            return Some(Arc::clone(pool));
        }
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("embedforge-{i}"))
        .build()
        .ok()
        .map(Arc::new)?;
    *slot = Some((threads, Arc::clone(&pool)));
    Some(pool)
}

/// The pool to run `len` items in, or `None` to run them on this thread: when only one
/// thread is allowed, the input is tiny, the process is a forked child, or threads cannot
/// be spawned.
fn pool_for(len: usize) -> Option<Arc<rayon::ThreadPool>> {
    let threads = num_threads();
    if threads <= 1 || len < 2 {
        return None;
    }
    pool(threads)
}

/// The chunk loop on the registered host OpenMP team (see [`crate::host_threads`]), or `None`
/// when there is none or the loop should stay on this thread.
fn on_host_team<T: Send, R: Send>(
    data: &mut [T],
    chunk_len: usize,
    f: &(dyn Fn(usize, &mut [T]) -> R + Sync),
) -> Option<Vec<R>> {
    let threads = num_threads();
    if threads <= 1 || data.len() <= chunk_len || is_forked() {
        return None;
    }
    host_threads::map_chunks_mut(data, chunk_len, threads, f)
}

/// `items.map(f)` in order, in parallel; an error if any item fails (later items may still run).
pub(crate) fn try_map<T: Sync, R: Send, E: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<R, E> + Sync + Send,
) -> Result<Vec<R>, E> {
    let mut refs: Vec<&T> = Vec::new();
    if host_threads::uses_openmp_team() {
        refs.extend(items);
    }
    if let Some(results) = on_host_team(&mut refs, 1, &|_, item: &mut [&T]| f(item[0])) {
        return results.into_iter().collect();
    }
    match pool_for(items.len()) {
        Some(pool) => pool.install(|| items.par_iter().map(&f).collect()),
        None => items.iter().map(&f).collect(),
    }
}

/// Calls `f(i, chunk)` for every `chunk_len`-long chunk `i` of `data`, in parallel.
pub(crate) fn for_each_chunk_mut<T: Send>(
    data: &mut [T],
    chunk_len: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    if chunk_len == 0 || on_host_team(data, chunk_len, &f).is_some() {
        return;
    }
    match pool_for(data.len() / chunk_len) {
        Some(pool) => pool.install(|| {
            data.par_chunks_mut(chunk_len)
                .enumerate()
                .for_each(|(i, c)| f(i, c))
        }),
        None => data
            .chunks_mut(chunk_len)
            .enumerate()
            .for_each(|(i, c)| f(i, c)),
    }
}

/// `f(item)` for every item of `items`, in parallel.
pub(crate) fn for_each_mut<T: Send>(items: &mut [T], f: impl Fn(&mut T) + Sync + Send) {
    if on_host_team(items, 1, &|_, item: &mut [T]| f(&mut item[0])).is_some() {
        return;
    }
    match pool_for(items.len()) {
        Some(pool) => pool.install(|| items.par_iter_mut().for_each(&f)),
        None => items.iter_mut().for_each(f),
    }
}

/// `f(i, chunk)` for every `chunk_len`-long chunk `i` of `data`, in parallel; the results in
/// chunk order.
pub(crate) fn map_chunks_mut<T: Send, R: Send>(
    data: &mut [T],
    chunk_len: usize,
    f: impl Fn(usize, &mut [T]) -> R + Sync + Send,
) -> Vec<R> {
    if chunk_len == 0 {
        return Vec::new();
    }
    if let Some(results) = on_host_team(data, chunk_len, &f) {
        return results;
    }
    match pool_for(data.len().div_ceil(chunk_len)) {
        Some(pool) => pool.install(|| {
            data.par_chunks_mut(chunk_len)
                .enumerate()
                .map(|(i, c)| f(i, c))
                .collect()
        }),
        None => data
            .chunks_mut(chunk_len)
            .enumerate()
            .map(|(i, c)| f(i, c))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The thread cap is process-global, so all assertions about it live in one test.
    #[test]
    fn cap_is_honoured_and_results_keep_order() {
        set_num_threads(3);
        assert_eq!(num_threads(), 3);
        let items: Vec<u64> = (0..10_000).collect();
        let doubled: Result<Vec<u64>, ()> = try_map(&items, |x| Ok(x * 2));
        assert_eq!(
            doubled.unwrap(),
            items.iter().map(|x| x * 2).collect::<Vec<_>>()
        );

        let in_pool: Result<Vec<usize>, ()> =
            try_map(&items[..4], |_| Ok(rayon::current_num_threads()));
        assert!(in_pool.unwrap().iter().all(|&n| n == 3));

        let err: Result<Vec<u64>, String> = try_map(&items, |&x| {
            if x == 777 {
                Err(format!("bad {x}"))
            } else {
                Ok(x)
            }
        });
        assert_eq!(err.unwrap_err(), "bad 777");

        let mut data = vec![0usize; 12];
        for_each_chunk_mut(&mut data, 4, |i, c| c.iter_mut().for_each(|v| *v = i));
        assert_eq!(data, [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
        let sums = map_chunks_mut(&mut data[..11], 4, |i, c| (i, c.len()));
        assert_eq!(sums, [(0, 4), (1, 4), (2, 3)]);
        let mut tens = vec![1, 2, 3];
        for_each_mut(&mut tens, |x| *x *= 10);
        assert_eq!(tens, [10, 20, 30]);

        set_num_threads(1);
        assert_eq!(num_threads(), 1);
        let serial: Result<Vec<u64>, ()> = try_map(&items, |x| Ok(x + 1));
        assert_eq!(serial.unwrap()[9_999], 10_000);

        set_num_threads(0);
        assert!(num_threads() >= 1);
    }
}
