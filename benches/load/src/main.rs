//! Load generator for the remote write load test: serves synthetic scrape targets, or runs a
//! remote write sink that decodes every request and counts samples and bytes.
//!
//! ```text
//! nodetel-loadgen targets --port 20000 --count 100 --series 5000
//! nodetel-loadgen sink --port 19291
//! ```
//!
//! Both stay cheap on purpose, so that the sender under test gets the measured core: target bodies
//! are rendered once and only their fixed-width value fields are rewritten per scrape, and the sink
//! walks the protobuf without building any message.

mod body;
mod http;
mod sink;
mod targets;
mod writereq;

use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage:\n  nodetel-loadgen targets --port P --count N --series M\n  nodetel-loadgen sink --port P\n\
         targets serve N bodies of M series on 127.0.0.1:P..P+N-1 (path /metrics); the sink takes \
         POST /api/v1/write and answers GET /stats with JSON counters"
    );
    ExitCode::from(2)
}

/// Value of `--name` in `args`, parsed.
fn flag<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    let pos = args.iter().position(|a| a == name)?;
    args.get(pos + 1)?.parse().ok()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("targets") => match (flag(&args, "--port"), flag(&args, "--count"), flag(&args, "--series")) {
            (Some(port), Some(count), Some(series)) => targets::serve(port, count, series),
            _ => return usage(),
        },
        Some("sink") => match flag(&args, "--port") {
            Some(port) => sink::serve(port),
            None => return usage(),
        },
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nodetel-loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}
