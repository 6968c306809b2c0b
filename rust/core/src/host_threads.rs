//! Data-parallel loops run on the host's OpenMP team instead of embedforge's own thread pool.
//!
//! In a torch training step our passes alternate with torch operations, which run on torch's
//! OpenMP team. After each parallel region an OpenMP worker keeps spinning for a while, waiting
//! for the next region; a loop handed to our own pool in that window shares the cores with the
//! spinning workers. On 2 cores a 2048 x 2048 softmax pass then took 5.9 ms instead of 2.5 ms.
//! Once the host registers its runtime's `GOMP_parallel` entry point, the loops of
//! [`crate::parallel`] run as parallel regions of that same team: the spinning workers take the
//! work at once, and there is one set of threads on the cores instead of two.

use std::ffi::{c_uint, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::Mutex;

/// The signature of OpenMP's `GOMP_parallel(fn, data, num_threads, flags)`: runs `fn(data)`
/// once on each thread of a team of `num_threads` (the caller being one of them) and returns
/// when every call has.
pub type GompParallel =
    unsafe extern "C" fn(extern "C" fn(*mut c_void), *mut c_void, c_uint, c_uint);

static REGION: AtomicPtr<()> = AtomicPtr::new(std::ptr::null_mut());

/// Runs embedforge's chunked loops on the OpenMP team behind `region` from now on (`None`
/// goes back to embedforge's own pool).
///
/// # Safety
///
/// `region` must be the `GOMP_parallel` function of an OpenMP runtime (GNU libgomp, or one
/// implementing its ABI) that stays loaded for the rest of the process.
pub unsafe fn use_openmp_team(region: Option<GompParallel>) {
    let pointer = region.map_or(std::ptr::null_mut(), |f| f as *mut ());
    REGION.store(pointer, Ordering::SeqCst);
}

/// Whether loops run on a host OpenMP team.
pub fn uses_openmp_team() -> bool {
    !REGION.load(Ordering::SeqCst).is_null()
}

fn region() -> Option<GompParallel> {
    let pointer = REGION.load(Ordering::SeqCst);
    if pointer.is_null() {
        return None;
    }
    // SAFETY: only `use_openmp_team` stores here, and it stores a `GompParallel`.
    Some(unsafe { std::mem::transmute::<*mut (), GompParallel>(pointer) })
}

/// A pointer to the data being split, shared by the team's threads.
struct Shared<T>(*mut T);
// SAFETY: each thread only touches the disjoint chunk of its current task.
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// `data[start..end]`.
    ///
    /// # Safety
    ///
    /// The range must lie within the data and no other live slice may overlap it.
    #[allow(clippy::mut_from_ref)] // disjointness is the caller's contract, checked by construction
    unsafe fn chunk(&self, start: usize, end: usize) -> &mut [T] {
        // SAFETY: forwarded to the caller.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(start), end - start) }
    }
}

/// `f(i, chunk)` for every `chunk_len`-long chunk `i` of `data` on `threads` threads of the
/// registered team, tasks handed out in order as threads free up; the results in chunk order.
/// `None` when no team is registered (the caller then uses its own pool).
pub(crate) fn map_chunks_mut<T: Send, R: Send>(
    data: &mut [T],
    chunk_len: usize,
    threads: usize,
    f: &(dyn Fn(usize, &mut [T]) -> R + Sync),
) -> Option<Vec<R>> {
    let region = region()?;
    let len = data.len();
    let tasks = len.div_ceil(chunk_len);
    let base = Shared(data.as_mut_ptr());
    let results: Vec<Mutex<Option<R>>> = (0..tasks).map(|_| Mutex::new(None)).collect();
    let task = |i: usize| {
        let start = i * chunk_len;
        let end = (start + chunk_len).min(len);
        // SAFETY: chunk `i` is `data[start..end]`, within `data` and disjoint from every other
        // task's chunk; `data` is borrowed mutably for the whole call.
        let chunk = unsafe { base.chunk(start, end) };
        let value = f(i, chunk);
        *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
    };
    run(region, tasks, threads, &task);
    Some(
        results
            .into_iter()
            .map(|slot| {
                slot.into_inner()
                    .unwrap_or_else(|e| e.into_inner())
                    .expect("every task ran")
            })
            .collect(),
    )
}

/// One parallel region in which the team's threads take task numbers from a shared counter.
fn run(region: GompParallel, tasks: usize, threads: usize, task: &(dyn Fn(usize) + Sync)) {
    struct Job<'a> {
        next: AtomicUsize,
        tasks: usize,
        task: &'a (dyn Fn(usize) + Sync),
        panicked: AtomicBool,
    }
    extern "C" fn work(data: *mut c_void) {
        // SAFETY: `data` points at the `Job` below, which outlives the parallel region.
        let job = unsafe { &*(data as *const Job<'_>) };
        loop {
            let i = job.next.fetch_add(1, Ordering::Relaxed);
            if i >= job.tasks || job.panicked.load(Ordering::Relaxed) {
                break;
            }
            // A panic must not unwind into the OpenMP runtime: note it and stop taking tasks.
            if catch_unwind(AssertUnwindSafe(|| (job.task)(i))).is_err() {
                job.panicked.store(true, Ordering::SeqCst);
            }
        }
    }
    let job = Job {
        next: AtomicUsize::new(0),
        tasks,
        task,
        panicked: AtomicBool::new(false),
    };
    let threads = c_uint::try_from(threads.min(tasks)).unwrap_or(c_uint::MAX);
    // SAFETY: `region` is a GOMP_parallel (see `use_openmp_team`); `work` only reads `job`,
    // which lives until the call returns, and never unwinds.
    unsafe { region(work, &job as *const Job<'_> as *mut c_void, threads, 0) };
    assert!(
        !job.panicked.load(Ordering::SeqCst),
        "a task of a parallel loop panicked"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in team: runs `f(data)` on `n` scoped threads.
    unsafe extern "C" fn scoped_team(
        f: extern "C" fn(*mut c_void),
        data: *mut c_void,
        n: c_uint,
        _flags: c_uint,
    ) {
        let data = data as usize;
        std::thread::scope(|s| {
            for _ in 0..n {
                s.spawn(move || f(data as *mut c_void));
            }
        });
    }

    #[test]
    fn chunks_run_once_each_and_results_keep_order() {
        // The stand-in team is a correct runner, so other tests that run meanwhile and find it
        // registered still get right results.
        unsafe { use_openmp_team(Some(scoped_team)) };
        assert!(uses_openmp_team());
        let mut data: Vec<usize> = (0..103).collect();
        let out = map_chunks_mut(&mut data, 10, 3, &|i, chunk: &mut [usize]| {
            chunk.iter_mut().for_each(|v| *v *= 2);
            (i, chunk.len())
        })
        .expect("a team is registered");
        unsafe { use_openmp_team(None) };
        assert_eq!(data, (0..103).map(|v| v * 2).collect::<Vec<_>>());
        assert_eq!(out.len(), 11);
        assert!(out.iter().enumerate().all(|(i, &(j, _))| i == j));
        assert_eq!(out[10].1, 3);
    }
}
