//! End-to-end tests: run the real `nodetel` binary and talk to it over loopback.

// The binary's commands: run (default config, endpoints, SIGTERM), validate, once.
mod binary;
// The gpu receiver in the binary: disabled without a driver, the rest unaffected.
mod gpu;
// Shared helpers: spawning the binary, HTTP GETs, free ports.
mod support;
