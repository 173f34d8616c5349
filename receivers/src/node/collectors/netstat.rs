//! `netstat`: protocol counters from `/proc/net/netstat`, `snmp` and `snmp6` as untyped
//! `node_netstat_<Proto>_<Field>`, filtered by node_exporter's default field regex.

use std::collections::HashMap;
use std::path::PathBuf;

use nodetel_core::MetricType;
use nodetel_host::procfs::{netstat, read_into};

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, Family};

pub(crate) struct NetstatCollector {
    /// netstat, snmp, snmp6.
    paths: [PathBuf; 3],
    emitter: Emitter,
}

struct Emitter {
    fields: regex::Regex,
    families: HashMap<Box<str>, Option<Family>>,
    key: String,
    failure: Option<CollectError>,
}

impl NetstatCollector {
    pub(crate) fn new(paths: &Paths, fields: regex::Regex) -> NetstatCollector {
        NetstatCollector {
            paths: [netstat::NETSTAT, netstat::SNMP, netstat::SNMP6].map(|f| paths.procfs.join(f)),
            emitter: Emitter {
                fields,
                families: HashMap::new(),
                key: String::new(),
                failure: None,
            },
        }
    }
}

impl Emitter {
    fn emit(&mut self, cx: &mut Context<'_>, protocol: &str, field: &str, value: f64) {
        if self.failure.is_some() {
            return;
        }
        self.key.clear();
        self.key.push_str(protocol);
        self.key.push('_');
        self.key.push_str(field);
        // The filter verdict is cached with the family so the regex runs once per field name.
        if !self.families.contains_key(self.key.as_str()) {
            let family = self.fields.is_match(&self.key).then(|| {
                Family::new(
                    &format!("node_netstat_{}", self.key),
                    MetricType::Unknown,
                    &format!("Statistic {protocol}{field}."),
                )
            });
            self.families.insert(self.key.as_str().into(), family);
        }
        if let Some(Some(family)) = self.families.get_mut(self.key.as_str())
            && let Err(e) = family.emit(cx, &[], value)
        {
            self.failure = Some(e.into());
        }
    }
}

impl Collector for NetstatCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        let NetstatCollector { paths, emitter } = self;
        for (i, path) in paths.iter().enumerate() {
            match read_into(path, cx.buf) {
                Ok(()) => {}
                // snmp6 is absent when IPv6 is disabled.
                Err(e) if i == 2 && e.is_not_found() => continue,
                Err(e) => return Err(e.into()),
            }
            let text = std::mem::take(cx.buf);
            let each = |p: &str, f: &str, v: f64| emitter.emit(cx, p, f, v);
            let parsed = if i == 2 {
                netstat::parse_snmp6(&text, path, each)
            } else {
                netstat::parse_pairs(&text, path, each)
            };
            *cx.buf = text;
            parsed?;
            if let Some(e) = emitter.failure.take() {
                return Err(e);
            }
        }
        Ok(())
    }
}
