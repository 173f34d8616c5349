//! The `nodetel` binary: parses the command line, sets up logging and hands over to the
//! command. Everything else lives in the library crates.

mod cli;
mod commands;
mod logging;
mod self_endpoints;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("nodetel")
        // A node agent: two workers keep latency low without taking the node's cores.
        .worker_threads(2)
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("nodetel: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(commands::dispatch(args)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("nodetel: {error:#}");
            ExitCode::FAILURE
        }
    }
}
