//! `sockstat`: socket counts from `/proc/net/sockstat` and `sockstat6`, as
//! `node_sockstat_<PROTO>_<field>`, plus `_mem_bytes` (pages times the page size).

use std::collections::HashMap;
use std::path::PathBuf;

use nodetel_core::MetricType;
use nodetel_host::procfs::{read_into, sockstat};

use super::{CollectError, Collector};
use crate::node::config::Paths;
use crate::node::series::{Context, Family};

pub(crate) struct SockstatCollector {
    path: PathBuf,
    path6: PathBuf,
    page_size: f64,
    families: HashMap<(Box<str>, Box<str>), Family>,
}

impl SockstatCollector {
    pub(crate) fn new(paths: &Paths) -> SockstatCollector {
        SockstatCollector {
            path: paths.procfs.join(sockstat::FILE),
            path6: paths.procfs.join(sockstat::FILE6),
            page_size: rustix::param::page_size() as f64,
            families: HashMap::new(),
        }
    }

    fn emit(&mut self, cx: &mut Context<'_>, protocol: &str, field: &str, value: f64) -> Result<(), CollectError> {
        let key = (protocol, field);
        let family = match self.families.iter_mut().find(|((p, f), _)| (&**p, &**f) == key) {
            Some((_, family)) => family,
            None => {
                let (name, help) = if protocol == "sockets" && field == "used" {
                    (
                        "node_sockstat_sockets_used".to_owned(),
                        "Number of IPv4 sockets in use.".to_owned(),
                    )
                } else {
                    (
                        format!("node_sockstat_{protocol}_{field}"),
                        format!("Number of {protocol} sockets in state {field}."),
                    )
                };
                self.families
                    .entry((protocol.into(), field.into()))
                    .or_insert_with(|| Family::new(&name, MetricType::Gauge, &help))
            }
        };
        family.emit(cx, &[], value)?;
        Ok(())
    }

    fn read(&mut self, cx: &mut Context<'_>, ipv6: bool) -> Result<(), CollectError> {
        let path = if ipv6 { &self.path6 } else { &self.path };
        match read_into(path, cx.buf) {
            Ok(()) => {}
            // Kernels without IPv6 have no sockstat6.
            Err(e) if ipv6 && e.is_not_found() => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let text = std::mem::take(cx.buf);
        let path = path.clone();
        let mut values = Vec::new();
        let parsed = sockstat::parse(&text, &path, |v| values.push((v.protocol, v.field, v.value)));
        let result = parsed.map_err(CollectError::from).and_then(|()| {
            for (protocol, field, value) in values {
                if ipv6 && protocol == "sockets" {
                    continue;
                }
                self.emit(cx, protocol, field, value as f64)?;
                if field == "mem" {
                    self.emit(cx, protocol, "mem_bytes", value as f64 * self.page_size)?;
                }
            }
            Ok(())
        });
        *cx.buf = text;
        result
    }
}

impl Collector for SockstatCollector {
    fn update(&mut self, cx: &mut Context<'_>) -> Result<(), CollectError> {
        self.read(cx, false)?;
        self.read(cx, true)
    }
}
