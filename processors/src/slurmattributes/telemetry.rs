//! Self-metrics of the `slurmattributes` processor: cache hits and misses, refreshes and how
//! long the last one took, jobs seen.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use nodetel_core::ComponentId;
use nodetel_core::telemetry::{MetricSource, Registry};

/// Counters shared by every instance of one processor id (one per pipeline).
#[derive(Debug, Default)]
pub struct SlurmAttributesMetrics {
    id: String,
    hits: AtomicU64,
    misses: AtomicU64,
    refreshes_ok: AtomicU64,
    refreshes_without_slurm: AtomicU64,
    last_refresh_us: AtomicU64,
    jobs: AtomicU64,
}

impl SlurmAttributesMetrics {
    /// Metrics not attached to any registry (tests, `nodetel once`).
    pub fn detached(id: &str) -> Arc<SlurmAttributesMetrics> {
        Arc::new(SlurmAttributesMetrics {
            id: id.to_owned(),
            ..SlurmAttributesMetrics::default()
        })
    }

    /// The metrics of `id` in `registry`, registered once however many pipelines build it.
    pub fn registered(registry: &Arc<Registry>, id: &ComponentId) -> Arc<SlurmAttributesMetrics> {
        type Known = Vec<(Weak<Registry>, ComponentId, Arc<SlurmAttributesMetrics>)>;
        static KNOWN: Mutex<Known> = Mutex::new(Vec::new());
        let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
        known.retain(|(r, _, _)| r.strong_count() > 0);
        if let Some((_, _, m)) = known
            .iter()
            .find(|(r, i, _)| i == id && r.upgrade().is_some_and(|r| Arc::ptr_eq(&r, registry)))
        {
            return m.clone();
        }
        let m = SlurmAttributesMetrics::detached(id.as_str());
        registry.add_source(m.clone());
        known.push((Arc::downgrade(registry), id.clone(), m.clone()));
        m
    }

    /// Adds one batch's cache lookups.
    pub fn add_lookups(&self, hits: u64, misses: u64) {
        self.hits.fetch_add(hits, Ordering::Relaxed);
        self.misses.fetch_add(misses, Ordering::Relaxed);
    }

    /// Records a refresh.
    pub fn refreshed(&self, slurm_answered: bool, took: std::time::Duration, jobs: usize) {
        let counter = if slurm_answered {
            &self.refreshes_ok
        } else {
            &self.refreshes_without_slurm
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.last_refresh_us.store(took.as_micros() as u64, Ordering::Relaxed);
        self.jobs.store(jobs as u64, Ordering::Relaxed);
    }

    /// Cache hits and misses so far.
    pub fn lookups(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
    }
}

impl MetricSource for SlurmAttributesMetrics {
    fn render(&self, out: &mut String) {
        let id = &self.id;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP nodetel_slurmattributes_cache_lookups_total Series looked up in the enrichment cache, by result.\n\
             # TYPE nodetel_slurmattributes_cache_lookups_total counter\n\
             nodetel_slurmattributes_cache_lookups_total{{component_id=\"{id}\",result=\"hit\"}} {}\n\
             nodetel_slurmattributes_cache_lookups_total{{component_id=\"{id}\",result=\"miss\"}} {}",
            load(&self.hits),
            load(&self.misses),
        );
        let _ = writeln!(
            out,
            "# HELP nodetel_slurmattributes_refreshes_total Job snapshot refreshes, by whether Slurm answered.\n\
             # TYPE nodetel_slurmattributes_refreshes_total counter\n\
             nodetel_slurmattributes_refreshes_total{{component_id=\"{id}\",slurm=\"answered\"}} {}\n\
             nodetel_slurmattributes_refreshes_total{{component_id=\"{id}\",slurm=\"unavailable\"}} {}",
            load(&self.refreshes_ok),
            load(&self.refreshes_without_slurm),
        );
        let _ = writeln!(
            out,
            "# HELP nodetel_slurmattributes_last_refresh_duration_seconds Wall time of the last refresh.\n\
             # TYPE nodetel_slurmattributes_last_refresh_duration_seconds gauge\n\
             nodetel_slurmattributes_last_refresh_duration_seconds{{component_id=\"{id}\"}} {}",
            load(&self.last_refresh_us) as f64 / 1e6,
        );
        let _ = writeln!(
            out,
            "# HELP nodetel_slurmattributes_jobs Jobs on this node in the current snapshot.\n\
             # TYPE nodetel_slurmattributes_jobs gauge\n\
             nodetel_slurmattributes_jobs{{component_id=\"{id}\"}} {}",
            load(&self.jobs),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_per_id_and_registry_renders_the_counts() {
        let registry = Arc::new(Registry::new());
        let id = ComponentId::parse("slurmattributes").unwrap();
        let a = SlurmAttributesMetrics::registered(&registry, &id);
        let b = SlurmAttributesMetrics::registered(&registry, &id);
        assert!(Arc::ptr_eq(&a, &b));
        a.add_lookups(3, 1);
        a.refreshed(false, std::time::Duration::from_millis(12), 2);
        let mut out = String::new();
        a.render(&mut out);
        assert!(
            out.contains(
                r#"nodetel_slurmattributes_cache_lookups_total{component_id="slurmattributes",result="hit"} 3"#
            ),
            "{out}"
        );
        assert!(out.contains(r#"slurm="unavailable"} 1"#), "{out}");
        assert!(
            out.contains(
                "nodetel_slurmattributes_last_refresh_duration_seconds{component_id=\"slurmattributes\"} 0.012"
            ),
            "{out}"
        );
        let text = registry.render();
        assert_eq!(text.matches("nodetel_slurmattributes_jobs{").count(), 1, "{text}");
    }
}
