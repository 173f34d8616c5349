//! Fuzzes the `/proc` parsers the node receiver reads every scrape (stat, meminfo, loadavg,
//! diskstats, mountinfo, net/dev, net/netstat, net/snmp, net/snmp6, net/sockstat, softnet_stat,
//! conntrack, net/udp, net/arp, net/tcp and tcp6 (the OTLP sender lookup), pressure, schedstat,
//! plain number files): any input must parse or fail with an error, never panic.
//!
//! Run from `fuzz/`: `cargo +nightly fuzz run procfs -- -max_total_time=300`.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use nodetel_host::procfs::{
    diskstats, loadavg, meminfo, mountinfo, net, netdev, netstat, pressure, schedstat, sockstat, stat, tcp, values,
};

fuzz_target!(|data: &[u8]| {
    // Readers load files with read_to_string, so only valid UTF-8 reaches a parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/proc/fuzz");
    let _ = stat::Stat::parse(text, path);
    for f in meminfo::fields(text, path).flatten() {
        let _ = f.scaled();
    }
    let _ = loadavg::parse(text, path);
    diskstats::parse(text, path).for_each(drop);
    for m in mountinfo::parse(text, path).flatten() {
        let _ = m.read_only();
    }
    let _ = mountinfo::unescape(text);
    netdev::parse(text, path).for_each(drop);
    let _ = netstat::parse_pairs(text, path, |_, _, _| {});
    let _ = netstat::parse_snmp6(text, path, |_, _, _| {});
    let _ = sockstat::parse(text, path, |_| {});
    let _ = net::parse_softnet(text, path);
    let _ = net::parse_conntrack_stat(text, path, |_, _| {});
    let _ = net::parse_udp_queues(text, path);
    net::parse_arp(text, |_| {});
    let _ = pressure::parse(text, path);
    schedstat::parse(text, path).for_each(drop);
    tcp::parse_table(text).for_each(drop);
    let _ = values::parse_numbers::<3>(text, path);
    values::key_values(text, path).for_each(drop);
});
