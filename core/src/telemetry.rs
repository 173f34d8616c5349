//! Self-telemetry: per-component counters and other sources, rendered in the text format on the
//! self endpoint.
//!
//! Written by hand on atomics rather than through a metrics facade: the set is small and fixed,
//! a counter bump is one relaxed atomic add, and rendering needs no global recorder.

use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::component::{ComponentId, ComponentKind};

/// Something that can append metrics to the self endpoint.
pub trait MetricSource: Send + Sync {
    /// Appends exposition text (with its own `# HELP`/`# TYPE` lines).
    fn render(&self, out: &mut String);
}

/// Counters every component has.
#[derive(Debug)]
pub struct ComponentTelemetry {
    id: ComponentId,
    kind: ComponentKind,
    received: AtomicU64,
    sent: AtomicU64,
    errors: AtomicU64,
    restarts: AtomicU64,
    up: AtomicBool,
    discarded: Mutex<Vec<(&'static str, u64)>>,
}

impl ComponentTelemetry {
    /// Counters for one component, all zero, reported up.
    pub fn new(id: ComponentId, kind: ComponentKind) -> ComponentTelemetry {
        ComponentTelemetry {
            id,
            kind,
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            up: AtomicBool::new(true),
            discarded: Mutex::new(Vec::new()),
        }
    }

    /// The component's id.
    pub fn id(&self) -> &ComponentId {
        &self.id
    }

    /// Series that entered the component.
    pub fn add_received(&self, n: u64) {
        self.received.fetch_add(n, Ordering::Relaxed);
    }

    /// Series the component handed on.
    pub fn add_sent(&self, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
    }

    /// One error.
    pub fn add_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// One restart after a failure.
    pub fn add_restart(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// Series dropped, with a reason from a small fixed set (`shutdown`, `rejected`, ...).
    pub fn add_discarded(&self, reason: &'static str, n: u64) {
        if n == 0 {
            return;
        }
        let mut d = self.discarded.lock().unwrap_or_else(|e| e.into_inner());
        match d.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, c)) => *c += n,
            None => d.push((reason, n)),
        }
    }

    /// Marks the component as running (true) or disabled / failed (false).
    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::Relaxed);
    }

    /// Series received so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Series sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Errors so far.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Restarts so far.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Series discarded so far for `reason`.
    pub fn discarded(&self, reason: &str) -> u64 {
        let d = self.discarded.lock().unwrap_or_else(|e| e.into_inner());
        d.iter().find(|(r, _)| *r == reason).map_or(0, |(_, c)| *c)
    }

    fn write_labels(&self, out: &mut String) {
        let _ = write!(
            out,
            "component_id=\"{}\",component_kind=\"{}\",component_type=\"{}\"",
            self.id,
            self.kind,
            self.id.type_name()
        );
    }
}

/// Counters of one bounded queue: depth is `pushed - popped`.
#[derive(Debug)]
pub struct QueueTelemetry {
    name: String,
    capacity: usize,
    pushed: AtomicU64,
    popped: AtomicU64,
}

impl QueueTelemetry {
    /// Counters for a queue of `capacity` batches.
    pub fn new(name: String, capacity: usize) -> QueueTelemetry {
        QueueTelemetry {
            name,
            capacity,
            pushed: AtomicU64::new(0),
            popped: AtomicU64::new(0),
        }
    }

    /// A batch went in.
    pub fn pushed(&self) {
        self.pushed.fetch_add(1, Ordering::Relaxed);
    }

    /// A batch came out.
    pub fn popped(&self) {
        self.popped.fetch_add(1, Ordering::Relaxed);
    }
}

type Family = (&'static str, &'static str, &'static str);
type QueueFamily = (&'static str, &'static str, &'static str, fn(&QueueTelemetry) -> u64);

const COMPONENT_FAMILIES: [Family; 6] = [
    (
        "nodetel_component_received_series_total",
        "counter",
        "Series that entered the component.",
    ),
    (
        "nodetel_component_sent_series_total",
        "counter",
        "Series the component handed on.",
    ),
    (
        "nodetel_component_discarded_series_total",
        "counter",
        "Series the component dropped, by reason.",
    ),
    ("nodetel_component_errors_total", "counter", "Errors the component hit."),
    (
        "nodetel_component_restarts_total",
        "counter",
        "Restarts of the component after a failure.",
    ),
    (
        "nodetel_component_up",
        "gauge",
        "1 when the component runs, 0 when it is disabled or failing.",
    ),
];

/// All self-metrics of this process.
#[derive(Default)]
pub struct Registry {
    components: Mutex<Vec<Arc<ComponentTelemetry>>>,
    queues: Mutex<Vec<Arc<QueueTelemetry>>>,
    sources: Mutex<Vec<Arc<dyn MetricSource>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Registers (or returns the existing) counters of a component.
    pub fn component(&self, id: &ComponentId, kind: ComponentKind) -> Arc<ComponentTelemetry> {
        let mut c = self.components.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = c.iter().find(|t| &t.id == id && t.kind == kind) {
            return t.clone();
        }
        let t = Arc::new(ComponentTelemetry::new(id.clone(), kind));
        c.push(t.clone());
        t
    }

    /// Registers the counters of a queue.
    pub fn queue(&self, name: String, capacity: usize) -> Arc<QueueTelemetry> {
        let q = Arc::new(QueueTelemetry::new(name, capacity));
        self.queues.lock().unwrap_or_else(|e| e.into_inner()).push(q.clone());
        q
    }

    /// Adds another source of metrics.
    pub fn add_source(&self, source: Arc<dyn MetricSource>) {
        self.sources.lock().unwrap_or_else(|e| e.into_inner()).push(source);
    }

    /// Renders everything in the text format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let comps = self.components.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for (i, (name, kind, help)) in COMPONENT_FAMILIES.iter().enumerate() {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for c in &comps {
                if i == 2 {
                    let d = c.discarded.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    for (reason, n) in d {
                        let _ = write!(out, "{name}{{");
                        c.write_labels(&mut out);
                        let _ = writeln!(out, ",reason=\"{reason}\"}} {n}");
                    }
                    continue;
                }
                let v = match i {
                    0 => c.received(),
                    1 => c.sent(),
                    3 => c.errors(),
                    4 => c.restarts(),
                    _ => u64::from(c.up.load(Ordering::Relaxed)),
                };
                let _ = write!(out, "{name}{{");
                c.write_labels(&mut out);
                let _ = writeln!(out, "}} {v}");
            }
        }
        let queues = self.queues.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let queue_families: [QueueFamily; 3] = [
            (
                "nodetel_queue_pushed_batches_total",
                "counter",
                "Batches put on the queue.",
                |q| q.pushed.load(Ordering::Relaxed),
            ),
            (
                "nodetel_queue_popped_batches_total",
                "counter",
                "Batches taken off the queue.",
                |q| q.popped.load(Ordering::Relaxed),
            ),
            (
                "nodetel_queue_capacity_batches",
                "gauge",
                "Capacity of the queue.",
                |q| q.capacity as u64,
            ),
        ];
        for (name, kind, help, get) in queue_families {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for q in &queues {
                let _ = writeln!(out, "{name}{{queue=\"{}\"}} {}", q.name, get(q));
            }
        }
        let _ = writeln!(
            out,
            "# HELP nodetel_interned_label_pairs Distinct label pairs held by the interner.\n\
             # TYPE nodetel_interned_label_pairs gauge\nnodetel_interned_label_pairs {}",
            crate::labels::interned_pairs()
        );
        let sources = self.sources.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for s in sources {
            s.render(&mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_component_counters() {
        let r = Registry::new();
        let t = r.component(&ComponentId::parse("node").unwrap(), ComponentKind::Receiver);
        t.add_received(5);
        t.add_sent(4);
        t.add_discarded("shutdown", 1);
        t.add_discarded("shutdown", 2);
        let text = r.render();
        let labels = r#"component_id="node",component_kind="receiver",component_type="node""#;
        assert!(
            text.contains(&format!("nodetel_component_received_series_total{{{labels}}} 5\n")),
            "{text}"
        );
        assert!(text.contains(&format!("nodetel_component_sent_series_total{{{labels}}} 4\n")));
        assert!(text.contains(&format!(
            "nodetel_component_discarded_series_total{{{labels},reason=\"shutdown\"}} 3\n"
        )));
        assert!(text.contains(&format!("nodetel_component_up{{{labels}}} 1\n")));
        assert!(Arc::ptr_eq(
            &t,
            &r.component(&ComponentId::parse("node").unwrap(), ComponentKind::Receiver)
        ));
    }
}
