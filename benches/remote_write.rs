//! Remote write encoding throughput: hand-written encoder against prost, plus snappy and SHA-256.

fn main() {}
