//! The thread cap and fork safety.

use std::sync::OnceLock;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::convert::count;

/// Cap the threads used by embedforge's Rust code (0 = one per core).
#[pyfunction]
pub(crate) fn set_num_threads(n: i64) -> PyResult<()> {
    embedforge::set_num_threads(count("n", n)?);
    Ok(())
}

/// The number of threads embedforge's Rust code uses.
#[pyfunction]
pub(crate) fn get_num_threads() -> usize {
    embedforge::num_threads()
}

/// Run embedforge's parallel loops on the OpenMP team whose ``GOMP_parallel`` function is at
/// ``address`` (``None``: back to embedforge's own threads).
///
/// ``address`` must come from the OpenMP runtime loaded in this process (torch's libgomp), found
/// with ``dlsym``; any other value crashes the process at the next parallel loop.
#[pyfunction]
#[pyo3(signature = (address))]
pub(crate) fn use_openmp_team(address: Option<usize>) -> PyResult<()> {
    let region = match address {
        None => None,
        Some(0) => {
            return Err(crate::errors::invalid_argument(
                "address",
                0,
                "the address of GOMP_parallel, or None",
            ))
        }
        // SAFETY: the caller passes GOMP_parallel's address (see above); a function pointer
        // and an address have the same size.
        Some(a) => Some(unsafe { std::mem::transmute::<usize, embedforge::GompParallel>(a) }),
    };
    // SAFETY: as above, the runtime stays loaded (torch never unloads it).
    unsafe { embedforge::use_openmp_team(region) };
    Ok(())
}

/// Whether embedforge's parallel loops run on a host OpenMP team.
#[pyfunction]
pub(crate) fn uses_openmp_team() -> bool {
    embedforge::uses_openmp_team()
}

extern "C" fn after_fork_in_child() {
    embedforge::mark_forked();
}

/// Makes forked children (DataLoader workers) run single-threaded: the pool's threads do
/// not survive `fork()`, and waiting on them would hang the child.
pub(crate) fn register_fork_handler() -> PyResult<()> {
    static REGISTERED: OnceLock<i32> = OnceLock::new();
    // SAFETY: `pthread_atfork` only records the handler; `after_fork_in_child` stores
    // atomics, which is safe in a freshly forked child.
    let rc = *REGISTERED
        .get_or_init(|| unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) });
    if rc == 0 {
        Ok(())
    } else {
        Err(PyRuntimeError::new_err(format!(
            "cannot register embedforge's fork handler: {}",
            std::io::Error::from_raw_os_error(rc)
        )))
    }
}
