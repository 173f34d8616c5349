//! Scrape throughput: parsing and full per-series processing of a realistic body.

fn main() {}
