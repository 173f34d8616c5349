//! OpenTelemetry -> Prometheus names, following the Collector's translator (prometheus/otlptranslator):
//! invalid characters become `_`, UCUM units become suffixes, monotonic counters end in `_total`
//! and unit-`1` gauges in `_ratio`. Runs once per metric or attribute key, never per sample.

/// How a metric will be exposed, which decides its suffixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum NameKind {
    /// A monotonic sum: gets `_total`.
    Counter,
    /// A gauge or non-monotonic sum: gets `_ratio` when its unit is `1`.
    Gauge,
    /// Histograms and summaries: unit suffix only.
    Other,
}

/// UCUM unit -> Prometheus unit word.
fn main_unit(unit: &str) -> &str {
    match unit {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        other => other,
    }
}

/// UCUM unit after `/` -> Prometheus word.
fn per_unit(unit: &str) -> &str {
    match unit {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ':'
}

/// Replaces runs of invalid characters with one `_` and trims a leading `_` (the Collector's
/// `cleanUpUnit`).
fn clean_unit(unit: &str) -> String {
    let mut out = String::with_capacity(unit.len());
    for c in unit.chars() {
        if is_name_char(c) {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_start_matches('_').to_owned()
}

/// The `(main, per)` unit suffix words for a UCUM unit; annotations (`{packets}`) give nothing.
fn unit_suffixes(unit: &str) -> (String, String) {
    let (main, per) = match unit.split_once('/') {
        Some((m, p)) => (m, Some(p)),
        None => (unit, None),
    };
    let usable = |u: &str| !u.is_empty() && !u.contains(['{', '}']);
    let main = main.trim();
    let main = if usable(main) {
        clean_unit(main_unit(main))
    } else {
        String::new()
    };
    let per = match per.map(str::trim) {
        Some(p) if usable(p) => clean_unit(per_unit(p)),
        _ => String::new(),
    };
    (main, per)
}

/// The unit as Prometheus metadata writes it (`seconds`, `bytes_per_second`); empty for `1` and
/// annotations.
pub(crate) fn prometheus_unit(unit: &str) -> String {
    match unit_suffixes(unit) {
        (main, per) if per.is_empty() => main,
        (main, per) if main.is_empty() => format!("per_{per}"),
        (main, per) => format!("{main}_per_{per}"),
    }
}

/// The Prometheus metric name for an OTLP metric.
pub(crate) fn metric_name(name: &str, unit: &str, kind: NameKind, add_suffixes: bool) -> String {
    let mut out = if add_suffixes {
        let mut tokens: Vec<&str> = name
            .split(|c: char| !is_name_char(c))
            .filter(|t| !t.is_empty())
            .collect();
        let (main, per) = unit_suffixes(unit);
        let per_token = if per.is_empty() {
            String::new()
        } else {
            format!("per_{per}")
        };
        let has = |tokens: &[&str], t: &str| tokens.contains(&t);
        let add_main = !main.is_empty() && !has(&tokens, &main);
        let add_per = !per.is_empty() && !has(&tokens, &per_token);
        if add_main {
            tokens.push(&main);
        }
        if add_per {
            tokens.push(&per_token);
        }
        if kind == NameKind::Counter {
            tokens.retain(|t| *t != "total");
            tokens.push("total");
        }
        if unit == "1" && kind == NameKind::Gauge {
            tokens.retain(|t| *t != "ratio");
            tokens.push("ratio");
        }
        tokens.join("_")
    } else {
        name.split(|c: char| !is_name_char(c) && c != '_')
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join("_")
    };
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The Prometheus label name for an attribute key: invalid characters become `_`, and a key that
/// starts with a digit or a single `_` gets a `key` prefix, as the Collector does.
pub(crate) fn label_name(key: &str) -> String {
    let mut out: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    } else if out.starts_with('_') && !out.starts_with("__") {
        out.insert_str(0, "key");
    }
    out
}

/// A float as Prometheus writes it in `le` and `quantile` labels.
pub(crate) fn float_label(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else if v.is_nan() {
        "NaN".into()
    } else {
        // Rust's Display is the shortest round-trip form without exponent, like Go's 'f', -1.
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(name: &str, unit: &str, kind: NameKind, expected: &str) {
        assert_eq!(
            metric_name(name, unit, kind, true),
            expected,
            "{name} [{unit}] {kind:?}"
        );
    }

    #[test]
    fn units_become_suffixes_and_counters_end_in_total() {
        use NameKind::*;
        check("system.cpu.time", "s", Counter, "system_cpu_time_seconds_total");
        check("train.step_time", "s", Gauge, "train_step_time_seconds");
        check("http.server.duration", "ms", Other, "http_server_duration_milliseconds");
        check("memory.usage", "By", Gauge, "memory_usage_bytes");
        check("disk.usage", "%", Gauge, "disk_usage_percent");
        check("speed", "m/s", Gauge, "speed_meters_per_second");
        check("throughput", "By/s", Counter, "throughput_bytes_per_second_total");
        check("tokens", "{token}", Counter, "tokens_total");
        check("tokens.rate", "{token}/s", Gauge, "tokens_rate_per_second");
        check("gpu.utilization", "1", Gauge, "gpu_utilization_ratio");
        check("errors", "1", Counter, "errors_total");
        check("loss", "", Gauge, "loss");
        check("energy", "J", Counter, "energy_joules_total");
        check("custom", "widgets", Gauge, "custom_widgets");
    }

    #[test]
    fn existing_tokens_are_not_repeated_and_total_moves_to_the_end() {
        use NameKind::*;
        check("request_seconds", "s", Gauge, "request_seconds");
        check("requests.total.served", "", Counter, "requests_served_total");
        check("requests_TOTAL", "", Counter, "requests_TOTAL_total");
        check("cache.hit_ratio", "1", Gauge, "cache_hit_ratio");
        check("a__b..c", "", Gauge, "a_b_c");
        check("2xx.responses", "", Counter, "_2xx_responses_total");
        check("ns:metric", "", Gauge, "ns:metric");
    }

    #[test]
    fn without_suffixes_only_invalid_characters_change() {
        assert_eq!(
            metric_name("system.cpu.time", "s", NameKind::Counter, false),
            "system_cpu_time"
        );
        assert_eq!(metric_name("a__b", "1", NameKind::Gauge, false), "a__b");
        assert_eq!(metric_name("9lives", "", NameKind::Gauge, false), "_9lives");
    }

    #[test]
    fn label_names_are_sanitised_like_the_collector() {
        assert_eq!(label_name("http.method"), "http_method");
        assert_eq!(label_name("gpu-id"), "gpu_id");
        assert_eq!(label_name("0rank"), "key_0rank");
        assert_eq!(label_name("_private"), "key_private");
        assert_eq!(label_name("__reserved"), "__reserved");
        assert_eq!(label_name("ünit"), "key_nit");
    }

    #[test]
    fn floats_in_labels_match_prometheus() {
        assert_eq!(float_label(0.005), "0.005");
        assert_eq!(float_label(10.0), "10");
        assert_eq!(float_label(f64::INFINITY), "+Inf");
        assert_eq!(float_label(0.99), "0.99");
        assert_eq!(float_label(1e21), "1000000000000000000000");
    }

    #[test]
    fn units_for_metadata_are_prometheus_words() {
        assert_eq!(prometheus_unit("s"), "seconds");
        assert_eq!(prometheus_unit("By/s"), "bytes_per_second");
        assert_eq!(prometheus_unit("{token}/s"), "per_second");
        assert_eq!(prometheus_unit("1"), "");
        assert_eq!(prometheus_unit("{packets}"), "");
    }
}
