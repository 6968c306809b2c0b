//! Integration tests of embedforge-serve: the router in-process (tower's `oneshot`), loading
//! errors, the command line, and the real binary over a socket (one test binary, so that the
//! release build links once).

mod common;

mod cli;
mod embed;
mod loading;
mod process;
mod routes;
mod search;
mod similarity;
