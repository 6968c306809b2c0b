//! `embedforge-serve`: parse the command line, load the model and corpus, serve until a signal.

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use embedforge_serve::{logging, server, shutdown, AppState, Args, StartupError};

// Every request allocates its texts and its answer; mimalloc keeps that off the global lock.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    logging::init();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), StartupError> {
    // Fixed once: left at 0, the core would ask the OS (affinity mask, cgroup quota files) for
    // the core count on every call, several times per request.
    let threads = match args.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    embedforge::set_num_threads(threads);
    let started = Instant::now();
    let state = AppState::load(args)?;
    tracing::info!(
        model = %args.model.display(),
        dim = state.model().dim(),
        corpus_size = state.corpus().map_or(0, |c| c.len()),
        seconds = started.elapsed().as_secs_f64(),
        "loaded"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(StartupError::Serve)?;
    runtime.block_on(async {
        let listener = server::bind(&args.host, args.port).await?;
        let address = listener.local_addr().map_err(StartupError::Serve)?;
        tracing::info!("listening on http://{address}");
        server::serve(listener, state, shutdown::signal()).await?;
        tracing::info!("stopped");
        Ok(())
    })
}
