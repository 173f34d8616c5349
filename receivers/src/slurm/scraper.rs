//! The [`Scraper`] of the `slurm` receiver: one round runs every enabled collector (controller)
//! or the node's job facts (worker), logs a failing collector once per failure streak and
//! keeps the others' series.

use std::collections::HashSet;

use async_trait::async_trait;
use nodetel_core::Batch;
use nodetel_core::component::{BoxError, Scraper};
use nodetel_core::labels::LabelError;
use nodetel_host::slurm::{CommandRunner, SlurmError};

use super::config::{COLLECTORS, Compat, Mode, SlurmConfig};
use super::controller;
use super::series::{Round, SeriesCache};
use super::worker::WorkerState;

/// Every collector failed this round.
#[derive(Debug, thiserror::Error)]
#[error("every Slurm collector failed; first error: {0}")]
pub struct AllFailed(String);

/// Collects Slurm metrics through a [`CommandRunner`].
#[derive(Debug)]
pub struct SlurmScraper<R> {
    runner: R,
    mode: Mode,
    compat: Compat,
    node: String,
    collectors: Vec<&'static str>,
    failing: HashSet<&'static str>,
    cache: SeriesCache,
    worker: WorkerState,
    info: Option<Vec<controller::InfoSeries>>,
}

impl<R: CommandRunner> SlurmScraper<R> {
    /// A scraper labelling every series with `config.job` and `instance`; `node` is the Slurm
    /// node name worker mode reports on.
    pub fn new(config: &SlurmConfig, runner: R, instance: &str, node: String) -> Result<SlurmScraper<R>, LabelError> {
        let collectors = COLLECTORS
            .iter()
            .copied()
            .filter(|c| config.collector_enabled(c))
            .collect();
        Ok(SlurmScraper {
            runner,
            mode: config.mode,
            compat: config.compat,
            node,
            collectors,
            failing: HashSet::new(),
            cache: SeriesCache::new(&config.job, instance)?,
            worker: WorkerState::default(),
            info: None,
        })
    }

    /// Runs one round into `out`.
    pub async fn collect(&mut self, timestamp_ms: i64, out: &mut Batch) -> Result<(), AllFailed> {
        let mut round = Round::new(&mut self.cache, out, timestamp_ms);
        let mut first_error = None;
        let names: Vec<&'static str> = match self.mode {
            Mode::Controller => self.collectors.clone(),
            Mode::Worker => vec!["worker"],
        };
        let mut ok = 0;
        for name in &names {
            let result = match self.mode {
                Mode::Controller if *name == "info" => {
                    // SckyzO only; vpenso 0.20 has no such collector.
                    if self.compat == Compat::Sckyzo {
                        if self.info.is_none() {
                            self.info = Some(controller::resolve_info(&self.runner).await);
                        }
                        let info = self.info.as_deref().unwrap_or_default();
                        controller::emit_info(info, &mut round);
                        if info.first().is_some_and(|general| general.3 == 0.0) {
                            // Reported (as not_found), but it must not hide a Slurm-less host.
                            Err(SlurmError::Failed {
                                command: "sinfo --version".to_owned(),
                                status: "no output".to_owned(),
                                stderr: "the Slurm tools did not answer".to_owned(),
                            })
                        } else {
                            Ok(())
                        }
                    } else {
                        Ok(())
                    }
                }
                Mode::Controller => controller::collect(name, &self.runner, self.compat, &mut round).await,
                Mode::Worker => self.worker.collect(&self.runner, &self.node, &mut round).await,
            };
            match result {
                Ok(()) => {
                    ok += 1;
                    if self.failing.remove(name) {
                        tracing::info!(collector = *name, "Slurm collector recovered.");
                    }
                }
                Err(error) => {
                    if self.failing.insert(name) {
                        tracing::warn!(collector = *name, %error, "Slurm collector failed; skipping it until it recovers.");
                    }
                    first_error.get_or_insert_with(|| error.to_string());
                }
            }
        }
        round.finish();
        match first_error {
            Some(e) if ok == 0 => Err(AllFailed(e)),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl<R: CommandRunner> Scraper for SlurmScraper<R> {
    async fn scrape(&mut self, timestamp_ms: i64, out: &mut Batch) -> Result<(), BoxError> {
        self.collect(timestamp_ms, out).await.map_err(Into::into)
    }
}
