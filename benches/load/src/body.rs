//! Synthetic exposition bodies in node_exporter and dcgm-exporter shapes: counters, gauges and
//! histograms, rendered once with fixed-width values that [`Body::next_scrape`] rewrites in place,
//! so every scrape sees new values for the cost of a few bytes per series.

/// Width of every value field: eight integer digits, a point, three decimals.
const VALUE_WIDTH: usize = 12;

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    /// Cumulative bucket `index` of `buckets` (the last one is `+Inf`).
    Bucket {
        index: u8,
        buckets: u8,
    },
    Sum,
    Count,
}

/// A rendered body and where its values sit.
pub(crate) struct Body {
    pub(crate) bytes: Vec<u8>,
    values: Vec<(u32, Kind)>,
    generation: u64,
    seed: u64,
}

/// A metric family: name, type, help, and the labels of its `i`-th series (histograms: of its
/// `i`-th bucket set).
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    /// Share of the body's series, in percent.
    share: usize,
    labels: fn(usize) -> String,
}

const MODES: [&str; 8] = ["idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice"];
const LE: [&str; 11] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf",
];

fn dcgm(i: usize) -> String {
    format!(
        "gpu=\"{i}\",UUID=\"GPU-9b2c6c0e-{i:0>6}-4d2e-8a51-0a5f3c1f0e7d\",device=\"nvidia{i}\",\
         modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"ip-10-1-206-211\",pci_bus_id=\"00000000:{:0>2X}:00.0\",\
         DCGM_FI_DRIVER_VERSION=\"570.133.20\"",
        i % 256
    )
}

const FAMILIES: [Family; 12] = [
    Family {
        name: "node_cpu_seconds_total",
        kind: "counter",
        help: "Seconds the CPUs spent in each mode.",
        share: 25,
        labels: |i| format!("cpu=\"{}\",mode=\"{}\"", i / 8, MODES[i % 8]),
    },
    Family {
        name: "node_network_receive_bytes_total",
        kind: "counter",
        help: "Network device statistic receive_bytes.",
        share: 5,
        labels: |i| format!("device=\"eth{i}\""),
    },
    Family {
        name: "node_network_transmit_bytes_total",
        kind: "counter",
        help: "Network device statistic transmit_bytes.",
        share: 5,
        labels: |i| format!("device=\"eth{i}\""),
    },
    Family {
        name: "node_disk_read_bytes_total",
        kind: "counter",
        help: "The total number of bytes read successfully.",
        share: 5,
        labels: |i| format!("device=\"nvme{i}n1\""),
    },
    Family {
        name: "node_filesystem_avail_bytes",
        kind: "gauge",
        help: "Filesystem space available to non-root users in bytes.",
        share: 5,
        labels: |i| format!("device=\"/dev/nvme{i}n1p1\",fstype=\"ext4\",mountpoint=\"/mnt/data{i}\""),
    },
    Family {
        name: "node_memory_numa_MemUsed",
        kind: "gauge",
        help: "Memory information field MemUsed.",
        share: 5,
        labels: |i| format!("node=\"{i}\""),
    },
    Family {
        name: "DCGM_FI_DEV_GPU_UTIL",
        kind: "gauge",
        help: "GPU utilization (in %).",
        share: 6,
        labels: dcgm,
    },
    Family {
        name: "DCGM_FI_DEV_POWER_USAGE",
        kind: "gauge",
        help: "Power draw (in W).",
        share: 6,
        labels: dcgm,
    },
    Family {
        name: "DCGM_FI_DEV_FB_USED",
        kind: "gauge",
        help: "Framebuffer memory used (in MiB).",
        share: 6,
        labels: dcgm,
    },
    Family {
        name: "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
        kind: "gauge",
        help: "Ratio of cycles the tensor (HMMA) pipe is active.",
        share: 6,
        labels: dcgm,
    },
    Family {
        name: "DCGM_FI_DEV_XID_ERRORS",
        kind: "counter",
        help: "Value of the last XID error encountered.",
        share: 6,
        labels: dcgm,
    },
    Family {
        name: "http_request_duration_seconds",
        kind: "histogram",
        help: "Latency of HTTP requests.",
        share: 20,
        labels: |i| format!("handler=\"/api/v1/endpoint{i}\",method=\"GET\""),
    },
];

/// Series per histogram: the buckets plus `_sum` and `_count`.
const HISTOGRAM_SERIES: usize = LE.len() + 2;

impl Body {
    /// Renders a body of about `series` series; `seed` makes targets differ.
    pub(crate) fn new(series: usize, seed: u64) -> Body {
        let mut b = Body {
            bytes: Vec::with_capacity(series * 120),
            values: Vec::with_capacity(series),
            generation: 0,
            seed,
        };
        let total_share: usize = FAMILIES.iter().map(|f| f.share).sum();
        let mut left = series;
        for (n, f) in FAMILIES.iter().enumerate() {
            let want = if n + 1 == FAMILIES.len() {
                left
            } else {
                (series * f.share / total_share).min(left)
            };
            let histogram = f.kind == "histogram";
            let instances = if histogram {
                want.div_ceil(HISTOGRAM_SERIES)
            } else {
                want
            };
            if instances == 0 {
                continue;
            }
            b.line(&format!("# HELP {} {}\n# TYPE {} {}\n", f.name, f.help, f.name, f.kind));
            for i in 0..instances {
                let labels = (f.labels)(i);
                if histogram {
                    for (index, le) in LE.iter().enumerate() {
                        let kind = Kind::Bucket {
                            index: index as u8,
                            buckets: LE.len() as u8,
                        };
                        b.series(&format!("{}_bucket{{{labels},le=\"{le}\"}} ", f.name), kind);
                    }
                    b.series(&format!("{}_sum{{{labels}}} ", f.name), Kind::Sum);
                    b.series(&format!("{}_count{{{labels}}} ", f.name), Kind::Count);
                } else {
                    let kind = if f.kind == "counter" {
                        Kind::Counter
                    } else {
                        Kind::Gauge
                    };
                    b.series(&format!("{}{{{labels}}} ", f.name), kind);
                }
            }
            left = left.saturating_sub(if histogram {
                instances * HISTOGRAM_SERIES
            } else {
                instances
            });
        }
        b.next_scrape();
        b
    }

    /// Number of series in the body.
    pub(crate) fn series_count(&self) -> usize {
        self.values.len()
    }

    fn line(&mut self, s: &str) {
        self.bytes.extend_from_slice(s.as_bytes());
    }

    fn series(&mut self, prefix: &str, kind: Kind) {
        self.bytes.extend_from_slice(prefix.as_bytes());
        self.values.push((self.bytes.len() as u32, kind));
        self.bytes.extend_from_slice(&[b'0'; VALUE_WIDTH]);
        self.bytes.push(b'\n');
    }

    /// Rewrites every value for the next scrape: counters grow, gauges wander, histogram buckets
    /// stay cumulative.
    pub(crate) fn next_scrape(&mut self) {
        self.generation += 1;
        let g = self.generation;
        let mut hist_count = 0u64;
        for (i, &(at, kind)) in self.values.iter().enumerate() {
            let i = i as u64 ^ self.seed;
            let (int, frac) = match kind {
                Kind::Counter => ((i * 7919) % 1_000_000 + g * (i % 17 + 1), (g * 37 + i) % 1000),
                Kind::Gauge => {
                    let h = mix(g, i);
                    (h % 100_000, (h >> 20) % 1000)
                }
                Kind::Bucket { index, buckets } => {
                    if index == 0 {
                        hist_count = g * 25 + i % 100;
                    }
                    (hist_count * (u64::from(index) + 1) / u64::from(buckets), 0)
                }
                Kind::Sum => (hist_count / 4, (g * 13) % 1000),
                Kind::Count => (hist_count, 0),
            };
            write_value(
                &mut self.bytes[at as usize..at as usize + VALUE_WIDTH],
                int % 100_000_000,
                frac,
            );
        }
    }
}

fn mix(a: u64, b: u64) -> u64 {
    let mut x = a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^ (x >> 29)
}

/// Writes `int.frac` as `%08d.%03d` into a 12-byte field.
fn write_value(out: &mut [u8], mut int: u64, mut frac: u64) {
    for slot in out[9..12].iter_mut().rev() {
        *slot = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    out[8] = b'.';
    for slot in out[..8].iter_mut().rev() {
        *slot = b'0' + (int % 10) as u8;
        int /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_the_asked_size_and_change_every_scrape() {
        let mut b = Body::new(5000, 1);
        assert!((4990..=5010).contains(&b.series_count()), "{}", b.series_count());
        let first = b.bytes.clone();
        b.next_scrape();
        assert_eq!(first.len(), b.bytes.len());
        assert_ne!(first, b.bytes);
        let text = String::from_utf8(b.bytes.clone()).unwrap_or_default();
        let samples = text.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(samples, b.series_count());
        assert!(text.contains("node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} "));
        assert!(text.contains(
            "http_request_duration_seconds_bucket{handler=\"/api/v1/endpoint0\",method=\"GET\",le=\"+Inf\"} "
        ));
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let v = l.rsplit(' ').next().unwrap_or_default();
            assert!(v.parse::<f64>().is_ok(), "{l}");
        }
    }
}
