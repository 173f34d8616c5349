//! The processor: adds the snapshot's labels to each series, caching the result per input label
//! set and snapshot epoch so a steady stream costs one hash lookup per series.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use nodetel_core::labels::LabelError;
use nodetel_core::{Batch, BoxError, Labels, Pair, Processor, ProcessorContext};
use nodetel_host::slurm::CommandRunner;

use super::config::SlurmAttributesConfig;
use super::refresher::{RefreshReport, Refresher, SharedSnapshot};
use super::senders::{SenderJob, Senders};
use super::snapshot::Snapshot;
use super::telemetry::SlurmAttributesMetrics;

type LabelsMap = nodetel_core::LabelsMap<Labels>;

/// Past this many cached label sets the cache is dropped and rebuilt (bounds memory under churn).
const MAX_CACHE: usize = 1 << 20;

/// The `slurmattributes` processor.
pub struct SlurmAttributes<R> {
    shared: SharedSnapshot,
    refresher: Option<Refresher<R>>,
    interval: Duration,
    start_budget: Duration,
    gpu_label: String,
    uuid_label: String,
    node_series: bool,
    exclude: Vec<String>,
    job_id_label: String,
    cache: LabelsMap,
    cache_epoch: u64,
    uuids: HashMap<String, u32>,
    senders: Senders,
    metrics: Arc<SlurmAttributesMetrics>,
}

impl<R> std::fmt::Debug for SlurmAttributes<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlurmAttributes")
            .field("cached", &self.cache.len())
            .field("lookups", &self.metrics.lookups())
            .finish()
    }
}

impl<R: CommandRunner> SlurmAttributes<R> {
    /// A processor for Slurm node `node`, asking Slurm through `runner`.
    pub fn new(config: &SlurmAttributesConfig, runner: R, node: String) -> Result<SlurmAttributes<R>, LabelError> {
        for name in [&config.gpu_label, &config.uuid_label] {
            nodetel_core::Pair::new(name, "x")?;
        }
        let shared: SharedSnapshot = Arc::new(RwLock::new(Arc::new(Snapshot::default())));
        let metrics = SlurmAttributesMetrics::detached("slurmattributes");
        let refresher = Refresher::new(
            runner,
            node,
            config.proc_root.clone(),
            config.labels.clone(),
            config.hpc_job,
            shared.clone(),
        )
        .with_metrics(metrics.clone())
        .with_slurm_max_age(config.slurm_max_age);
        Ok(SlurmAttributes {
            shared,
            refresher: Some(refresher),
            interval: config.refresh_interval,
            start_budget: config.command_timeout + Duration::from_secs(1),
            gpu_label: config.gpu_label.clone(),
            uuid_label: config.uuid_label.clone(),
            node_series: config.node_series,
            exclude: config.exclude_metric_prefixes.clone(),
            job_id_label: config.labels.job_id.clone(),
            cache: LabelsMap::default(),
            cache_epoch: 0,
            uuids: HashMap::new(),
            senders: Senders::new(
                config.proc_root.clone(),
                config.labels.clone(),
                config.hpc_job,
                config.refresh_interval,
            ),
            metrics,
        })
    }

    /// Reports into `metrics` (the registry's, when built from config) instead of a detached set.
    pub fn with_metrics(mut self, metrics: Arc<SlurmAttributesMetrics>) -> SlurmAttributes<R> {
        self.refresher = self.refresher.map(|r| r.with_metrics(metrics.clone()));
        self.metrics = metrics;
        self
    }

    /// Runs one refresh now (before `start`, for tests and `nodetel once`).
    pub async fn refresh_now(&mut self) -> Option<RefreshReport> {
        match self.refresher.as_mut() {
            Some(r) => Some(r.refresh().await),
            None => None,
        }
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Cache hits and misses so far.
    pub fn cache_stats(&self) -> (u64, u64) {
        self.metrics.lookups()
    }

    fn enrich(&mut self, labels: &Labels, snap: &Snapshot) -> Labels {
        if excluded(labels, &self.exclude) {
            return labels.clone();
        }
        if let Some(id) = labels.get(&self.job_id_label) {
            return with_missing(labels, snap.by_job.get(id).map_or(&[][..], Vec::as_slice));
        }
        let gpu = labels.get(&self.gpu_label);
        let uuid = labels.get(&self.uuid_label);
        let pairs = match (gpu, uuid) {
            (Some(g), uuid) => {
                let idx = g.trim().parse::<u32>().ok();
                if let (Some(i), Some(u)) = (idx, uuid) {
                    // Learn UUID -> index from series that carry both, for series with only a UUID.
                    if !self.uuids.contains_key(u) {
                        self.uuids.insert(u.to_owned(), i);
                    }
                }
                idx.and_then(|i| snap.gpus.get(&i))
            }
            (None, Some(u)) => self.uuids.get(u).and_then(|i| snap.gpus.get(i)),
            (None, None) if self.node_series => snap.node.as_ref(),
            (None, None) => None,
        };
        match pairs {
            Some(pairs) => with_missing(labels, pairs),
            None => labels.clone(),
        }
    }

    /// Labels the series of a batch that local process `pid` pushed with that process's job
    /// and rank. Returns false, leaving the batch to the usual rules, when the process cannot
    /// be told.
    fn process_sent(&mut self, pid: u32, batch: &mut Batch, snap: &Snapshot) -> bool {
        let sender = self.senders.get(pid, snap);
        let pairs = match &sender.job {
            SenderJob::Unknown => return false,
            SenderJob::NotInJob => &[][..],
            SenderJob::InJob(p) => p.as_slice(),
        };
        let (mut hits, mut misses) = (0, 0);
        for series in &mut batch.series {
            if let Some(out) = sender.cache.get(&series.labels) {
                hits += 1;
                series.labels = out.clone();
                continue;
            }
            misses += 1;
            let out = if excluded(&series.labels, &self.exclude) {
                series.labels.clone()
            } else if let Some(id) = series.labels.get(&self.job_id_label) {
                // The sender said which job; it knows better than its environment.
                with_missing(&series.labels, snap.by_job.get(id).map_or(&[][..], Vec::as_slice))
            } else {
                with_missing(&series.labels, pairs)
            };
            if sender.cache.len() < MAX_CACHE {
                sender.cache.insert(series.labels.clone(), out.clone());
            }
            series.labels = out;
        }
        self.metrics.add_lookups(hits, misses);
        true
    }
}

/// Whether the series is one the config keeps free of job labels.
fn excluded(labels: &Labels, exclude: &[String]) -> bool {
    let name = labels.metric_name().unwrap_or("");
    exclude.iter().any(|p| name.starts_with(p.as_str()))
}

/// `labels` plus those of `pairs` it does not have; a series' own labels are never overwritten.
fn with_missing(labels: &Labels, pairs: &[Pair]) -> Labels {
    let missing: Vec<&Pair> = pairs.iter().filter(|p| labels.get(p.name()).is_none()).collect();
    if missing.is_empty() {
        return labels.clone();
    }
    let mut b = labels.to_builder();
    for p in missing {
        b.push_pair(p.clone());
    }
    b.build().unwrap_or_else(|_| labels.clone())
}

#[async_trait]
impl<R: CommandRunner> Processor for SlurmAttributes<R> {
    async fn start(&mut self, cx: ProcessorContext) -> Result<(), BoxError> {
        let Some(mut refresher) = self.refresher.take() else {
            return Ok(());
        };
        // The pipeline waits for start; a hanging slurmctld must not hold it longer than about
        // one command. The refresher's state stays consistent when a refresh is dropped.
        match tokio::time::timeout(self.start_budget, refresher.refresh()).await {
            Ok(first) => tracing::info!(
                jobs = ?first.slurm_jobs,
                tasks = first.tasks,
                elapsed_ms = first.elapsed.as_millis() as u64,
                "Slurm job snapshot taken."
            ),
            Err(_) => tracing::warn!(
                budget_ms = self.start_budget.as_millis() as u64,
                "The first Slurm job snapshot is late; series pass unlabelled until a refresh completes."
            ),
        }
        let interval = self.interval;
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                tokio::select! {
                    _ = cx.shutdown.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                tokio::select! {
                    _ = cx.shutdown.cancelled() => return,
                    _ = refresher.refresh() => {}
                }
            }
        });
        Ok(())
    }

    fn process(&mut self, batch: &mut Batch) {
        let snap = self.snapshot();
        if snap.epoch != self.cache_epoch || self.cache.len() > MAX_CACHE {
            self.cache.clear();
            self.senders.clear();
            self.cache_epoch = snap.epoch;
        }
        if let Some(pid) = batch.sender_pid
            && self.process_sent(pid, batch, &snap)
        {
            return;
        }
        let (mut hits, mut misses) = (0, 0);
        for series in &mut batch.series {
            if let Some(out) = self.cache.get(&series.labels) {
                hits += 1;
                series.labels = out.clone();
                continue;
            }
            misses += 1;
            let out = self.enrich(&series.labels, &snap);
            self.cache.insert(series.labels.clone(), out.clone());
            series.labels = out;
        }
        self.metrics.add_lookups(hits, misses);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodetel_core::{Sample, Series};
    use nodetel_host::slurm::StaticRunner;
    use nodetel_host::slurm::squeue::node_jobs_args;

    const JOB3: &str = "JobId=3 JobName=nt-train UserId=root(0) Partition=gpu JobState=RUNNING NodeList=vm \
                        JOB_GRES=gpu:2 Nodes=vm CPU_IDs=2-3 Mem=0 GRES=gpu:2(IDX:0-1) MinCPUsNode=1\n";

    fn runner(squeue_out: &str) -> StaticRunner {
        StaticRunner::new()
            .with("squeue", &node_jobs_args("vm"), squeue_out)
            .with("scontrol", &["-d", "show", "job", "-o", "3"], JOB3)
    }

    fn processor(r: StaticRunner) -> SlurmAttributes<StaticRunner> {
        let dir = std::env::temp_dir().join("nodetel-no-such-proc");
        let config = SlurmAttributesConfig {
            proc_root: dir,
            ..SlurmAttributesConfig::default()
        };
        SlurmAttributes::new(&config, r, "vm".to_owned()).unwrap()
    }

    fn batch(sets: &[&[(&str, &str)]]) -> Batch {
        let mut b = Batch::new();
        for s in sets {
            b.series.push(Series::new(
                Labels::from_pairs(s.iter().copied()).unwrap(),
                Sample::new(1, 1.0),
            ));
        }
        b
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn gpu_series_get_their_jobs_labels_and_others_stay() {
        let mut p = processor(runner("3|root|gpu|RUNNING|nt-train\n"));
        rt().block_on(p.refresh_now());
        let mut b = batch(&[
            &[("__name__", "DCGM_FI_DEV_GPU_UTIL"), ("gpu", "1"), ("UUID", "GPU-b")],
            &[("__name__", "DCGM_FI_DEV_GPU_UTIL"), ("gpu", "2")],
            &[("__name__", "node_load1")],
            &[
                ("__name__", "DCGM_FI_DEV_GPU_UTIL"),
                ("gpu", "0"),
                ("slurm_job_id", "keep"),
            ],
        ]);
        p.process(&mut b);
        let out: Vec<String> = b.series.iter().map(|s| s.labels.to_string()).collect();
        assert_eq!(
            out[0],
            r#"DCGM_FI_DEV_GPU_UTIL{UUID="GPU-b",gpu="1",slurm_job_id="3",slurm_job_name="nt-train",slurm_job_user="root",slurm_partition="gpu"}"#
        );
        assert_eq!(out[1], r#"DCGM_FI_DEV_GPU_UTIL{gpu="2"}"#, "a free GPU is left alone");
        assert_eq!(
            out[2],
            r#"node_load1{slurm_job_id="3",slurm_job_name="nt-train",slurm_job_user="root",slurm_partition="gpu"}"#,
            "one job holds the node"
        );
        assert_eq!(
            out[3], r#"DCGM_FI_DEV_GPU_UTIL{gpu="0",slurm_job_id="keep"}"#,
            "existing labels are never overwritten, and a series naming a job gets only that job's labels"
        );
    }

    #[test]
    fn a_series_naming_its_job_gets_that_jobs_labels_only() {
        let mut p = processor(runner("3|root|gpu|RUNNING|nt-train\n"));
        rt().block_on(p.refresh_now());
        let mut b = batch(&[
            &[("__name__", "train_loss"), ("slurm_job_id", "3"), ("rank", "5")],
            &[("__name__", "train_loss"), ("slurm_job_id", "99")],
        ]);
        p.process(&mut b);
        assert_eq!(
            b.series[0].labels.to_string(),
            r#"train_loss{rank="5",slurm_job_id="3",slurm_job_name="nt-train",slurm_job_user="root",slurm_partition="gpu"}"#
        );
        assert_eq!(
            b.series[1].labels.to_string(),
            r#"train_loss{slurm_job_id="99"}"#,
            "job 99 is not here: nothing is guessed"
        );
    }

    fn fake_proc(name: &str, tasks: &[(u32, &[u8])]) -> std::path::PathBuf {
        let root = std::env::temp_dir().join(format!("nodetel-senders-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (pid, environ) in tasks {
            std::fs::create_dir_all(root.join(pid.to_string())).unwrap();
            std::fs::write(root.join(pid.to_string()).join("environ"), environ).unwrap();
        }
        root
    }

    #[test]
    fn batches_from_a_known_sender_get_its_job_and_rank() {
        let root = fake_proc(
            "known",
            &[
                (700, b"SLURM_JOB_ID=3\0SLURM_STEP_ID=0\0SLURM_PROCID=1\0SLURM_LOCALID=1\0RANK=9\0"),
                (701, b"PATH=/usr/bin\0HOME=/root\0"),
                (
                    702,
                    b"SLURM_JOB_ID=8\0SLURM_PROCID=0\0SLURM_JOB_NAME=fresh\0SLURM_JOB_USER=bob\0SLURM_JOB_PARTITION=dev\0",
                ),
            ],
        );
        let config = SlurmAttributesConfig {
            proc_root: root.clone(),
            ..SlurmAttributesConfig::default()
        };
        let mut p = SlurmAttributes::new(&config, runner("3|root|gpu|RUNNING|nt-train\n"), "vm".to_owned()).unwrap();
        rt().block_on(p.refresh_now());
        let sent = |p: &mut SlurmAttributes<StaticRunner>, pid: Option<u32>| {
            let mut b = batch(&[&[("__name__", "train_loss")], &[("__name__", "slurm_cpus_alloc")]]);
            b.sender_pid = pid;
            p.process(&mut b);
            b.series.iter().map(|s| s.labels.to_string()).collect::<Vec<_>>()
        };
        assert_eq!(
            sent(&mut p, Some(700))[0],
            r#"train_loss{local_rank="1",rank="9",slurm_job_id="3",slurm_job_name="nt-train",slurm_job_user="root",slurm_partition="gpu"}"#,
            "Slurm's job facts, the process's own rank (RANK over SLURM_PROCID)"
        );
        assert_eq!(
            sent(&mut p, Some(700))[1],
            r#"slurm_cpus_alloc"#,
            "excluded prefixes stay excluded"
        );
        assert_eq!(
            sent(&mut p, Some(701))[0],
            r#"train_loss"#,
            "a process outside any job gets no job labels, even though one job holds the node"
        );
        assert_eq!(
            sent(&mut p, Some(702))[0],
            r#"train_loss{rank="0",slurm_job_id="8",slurm_job_name="fresh",slurm_job_user="bob",slurm_partition="dev"}"#,
            "a job younger than the snapshot is described by the task's environment"
        );
        assert_eq!(
            sent(&mut p, Some(703))[0],
            r#"train_loss{slurm_job_id="3",slurm_job_name="nt-train",slurm_job_user="root",slurm_partition="gpu"}"#,
            "an unknown sender falls back to the node's only job"
        );
        assert_eq!(sent(&mut p, None)[0], sent(&mut p, Some(703))[0]);
        let (hits, _) = p.cache_stats();
        assert!(hits > 0, "repeated batches of a sender hit its cache");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn slurms_own_cluster_metrics_are_left_alone() {
        let mut p = processor(runner("3|root|gpu|RUNNING|nt-train\n"));
        rt().block_on(p.refresh_now());
        let mut b = batch(&[
            &[("__name__", "slurm_cpus_alloc"), ("job", "slurm_exporter")],
            &[("__name__", "node_load1")],
        ]);
        p.process(&mut b);
        assert_eq!(b.series[0].labels.get("slurm_job_id"), None);
        assert_eq!(b.series[1].labels.get("slurm_job_id"), Some("3"));
    }

    #[test]
    fn uuid_only_series_match_once_the_index_is_learned() {
        let mut p = processor(runner("3|root|gpu|RUNNING|nt-train\n"));
        rt().block_on(p.refresh_now());
        let mut b = batch(&[
            &[("__name__", "m"), ("gpu", "1"), ("UUID", "GPU-b")],
            &[("__name__", "other"), ("UUID", "GPU-b")],
        ]);
        p.process(&mut b);
        assert_eq!(b.series[1].labels.get("slurm_job_id"), Some("3"));
    }

    #[test]
    fn results_are_cached_until_the_snapshot_changes() {
        let mut p = processor(runner("3|root|gpu|RUNNING|nt-train\n"));
        let rt = rt();
        rt.block_on(p.refresh_now());
        let input = batch(&[&[("__name__", "m"), ("gpu", "0")]]);
        let mut b = input.clone();
        p.process(&mut b);
        let mut again = input.clone();
        p.process(&mut again);
        assert_eq!(p.cache_stats(), (1, 1));
        assert!(
            again.series[0].labels.ptr_eq(&b.series[0].labels),
            "the cached set is reused"
        );
        let report = rt.block_on(p.refresh_now()).unwrap();
        assert!(!report.changed, "same jobs, same epoch");
        assert_eq!(report.commands, 1, "job details are asked once per job");
    }

    #[test]
    fn labels_disappear_when_the_job_ends() {
        let mut p = processor(runner("3|root|gpu|RUNNING|nt-train\n"));
        let rt = rt();
        rt.block_on(p.refresh_now());
        let input = batch(&[&[("__name__", "m"), ("gpu", "0")]]);
        let mut b = input.clone();
        p.process(&mut b);
        assert_eq!(b.series[0].labels.get("slurm_job_id"), Some("3"));
        // A second refresher on the same shared snapshot, now seeing an empty queue.
        let mut ended = Refresher::new(
            runner(""),
            "vm".to_owned(),
            std::env::temp_dir().join("nodetel-no-such-proc"),
            super::super::LabelNames::default(),
            false,
            p.shared.clone(),
        );
        let report = rt.block_on(ended.refresh());
        assert!(report.changed);
        let mut b = input.clone();
        p.process(&mut b);
        assert_eq!(b.series[0].labels.get("slurm_job_id"), None);
    }

    #[test]
    fn slurm_is_asked_again_only_when_the_local_tasks_change() {
        let proc_root = std::env::temp_dir().join(format!("nodetel-slurmattributes-proc-{}", std::process::id()));
        let task = proc_root.join("4242");
        std::fs::create_dir_all(&task).unwrap();
        std::fs::write(
            task.join("environ"),
            b"SLURM_JOB_ID=3\0SLURM_STEP_ID=0\0SLURM_PROCID=1\0SLURM_STEP_GPUS=1\0",
        )
        .unwrap();
        let config = SlurmAttributesConfig {
            proc_root: proc_root.clone(),
            ..SlurmAttributesConfig::default()
        };
        let mut p = SlurmAttributes::new(&config, runner("3|root|gpu|RUNNING|nt-train\n"), "vm".to_owned()).unwrap();
        let rt = rt();
        let first = rt.block_on(p.refresh_now()).unwrap();
        assert!(first.slurm_asked && first.changed);
        let second = rt.block_on(p.refresh_now()).unwrap();
        assert!(
            !second.slurm_asked,
            "job 3's tasks are still here: Slurm's answer stands"
        );
        assert_eq!(second.commands, 0);
        let mut b = batch(&[&[("__name__", "m"), ("gpu", "1")]]);
        p.process(&mut b);
        assert_eq!(b.series[0].labels.get("rank"), Some("1"));
        std::fs::remove_dir_all(&task).unwrap();
        let third = rt.block_on(p.refresh_now()).unwrap();
        assert!(third.slurm_asked, "the tasks are gone: ask Slurm again");
        std::fs::remove_dir_all(&proc_root).unwrap();
    }

    /// A Slurm that never answers.
    struct Hanging;

    impl CommandRunner for Hanging {
        async fn run(&self, _: &str, _: &[&str]) -> Result<String, nodetel_host::slurm::SlurmError> {
            std::future::pending().await
        }
    }

    #[test]
    fn a_hanging_slurm_does_not_hold_start_past_its_budget() {
        let config = SlurmAttributesConfig {
            command_timeout: Duration::from_millis(100),
            proc_root: std::env::temp_dir().join("nodetel-no-such-proc"),
            ..SlurmAttributesConfig::default()
        };
        let mut p = SlurmAttributes::new(&config, Hanging, "vm".to_owned()).unwrap();
        let cx = ProcessorContext {
            id: nodetel_core::ComponentId::parse("slurmattributes").unwrap(),
            shutdown: nodetel_core::CancellationToken::new(),
        };
        let started = std::time::Instant::now();
        rt().block_on(p.start(cx.clone())).unwrap();
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        cx.shutdown.cancel();
    }

    #[test]
    fn failing_slurm_leaves_series_unlabelled_without_panicking() {
        let mut p = processor(StaticRunner::new());
        let report = rt().block_on(p.refresh_now()).unwrap();
        assert_eq!(report.slurm_jobs, None);
        let mut b = batch(&[&[("__name__", "m"), ("gpu", "0")], &[("__name__", "n"), ("gpu", "x")]]);
        let before = b.clone();
        p.process(&mut b);
        assert_eq!(b, before);
    }
}
