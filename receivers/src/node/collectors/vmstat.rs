//! `vmstat`: selected `/proc/vmstat` counters as untyped `node_vmstat_<field>`.
//!
//! node_exporter's default field filter is `^(oom_kill|pgpg|pswp|pg.*fault).*`.

use std::collections::HashMap;
use std::path::PathBuf;

use nodetel_core::MetricType;
use nodetel_host::procfs::{read_into, values};

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, Family};

pub(crate) struct VmstatCollector {
    path: PathBuf,
    fields: regex::Regex,
    families: HashMap<Box<str>, Family>,
}

impl VmstatCollector {
    pub(crate) fn new(paths: &Paths, fields: regex::Regex) -> VmstatCollector {
        VmstatCollector {
            path: paths.procfs.join("vmstat"),
            fields,
            families: HashMap::new(),
        }
    }
}

impl Collector for VmstatCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        read_into(&self.path, cx.buf)?;
        let text = std::mem::take(cx.buf);
        let result = (|| {
            for kv in values::key_values(&text, &self.path) {
                let (key, value) = kv?;
                if !self.fields.is_match(key) {
                    continue;
                }
                let family = match self.families.get_mut(key) {
                    Some(f) => f,
                    None => self.families.entry(key.into()).or_insert_with(|| {
                        Family::new(
                            &format!("node_vmstat_{key}"),
                            MetricType::Unknown,
                            &format!("/proc/vmstat information field {key}."),
                        )
                    }),
                };
                family.emit(cx, &[], value)?;
            }
            Ok(())
        })();
        *cx.buf = text;
        result
    }
}
