//! Collectors that do blocking work (file reads on a hung mount, NVML calls on a failing GPU)
//! run on tokio's blocking pool, one round at a time.

use std::sync::{Arc, Mutex, TryLockError};

use async_trait::async_trait;

use crate::batch::Batch;
use crate::component::{BoxError, Scraper};

/// A synchronous collector: one round of reads into a batch.
pub trait BlockingCollector: Send + 'static {
    /// Collects one round into `out`, stamping samples with `timestamp_ms`.
    fn collect(&mut self, timestamp_ms: i64, out: &mut Batch);
}

/// Why a blocking round did not run.
#[derive(Debug, thiserror::Error)]
pub enum BlockingScrapeError {
    /// The previous round has not returned (a read is hanging); this round is skipped.
    #[error("the previous collection is still running; skipping this round")]
    Busy,
    /// The blocking task panicked or was cancelled.
    #[error("the collection task failed: {0}")]
    Task(String),
}

/// A [`Scraper`] that runs a [`BlockingCollector`] on the blocking pool.
///
/// A round that outlives its timeout keeps the collector locked until its read returns; later
/// rounds are skipped meanwhile instead of piling up threads behind it.
#[derive(Debug)]
pub struct BlockingScraper<C> {
    inner: Arc<Mutex<C>>,
}

impl<C> Clone for BlockingScraper<C> {
    fn clone(&self) -> Self {
        BlockingScraper {
            inner: self.inner.clone(),
        }
    }
}

impl<C: BlockingCollector> BlockingScraper<C> {
    /// Wraps a collector.
    pub fn new(collector: C) -> BlockingScraper<C> {
        BlockingScraper {
            inner: Arc::new(Mutex::new(collector)),
        }
    }
}

#[async_trait]
impl<C: BlockingCollector> Scraper for BlockingScraper<C> {
    async fn scrape(&mut self, timestamp_ms: i64, out: &mut Batch) -> Result<(), BoxError> {
        let inner = self.inner.clone();
        let mut batch = tokio::task::spawn_blocking(move || {
            let mut collector = match inner.try_lock() {
                Ok(guard) => guard,
                // A panic in an earlier round left consistent data behind: each round starts over.
                Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                Err(TryLockError::WouldBlock) => return Err(BlockingScrapeError::Busy),
            };
            let mut batch = Batch::new();
            collector.collect(timestamp_ms, &mut batch);
            Ok(batch)
        })
        .await
        .map_err(|e| BlockingScrapeError::Task(e.to_string()))??;
        out.append(&mut batch);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::{Labels, METRIC_NAME};
    use crate::sample::Sample;
    use std::sync::mpsc;

    struct Gate(mpsc::Receiver<()>);

    impl BlockingCollector for Gate {
        fn collect(&mut self, timestamp_ms: i64, out: &mut Batch) {
            let _ = self.0.recv();
            out.push(
                Labels::from_pairs([(METRIC_NAME, "m")]).unwrap(),
                Sample::new(timestamp_ms, 1.0),
            );
        }
    }

    #[tokio::test]
    async fn a_hung_round_makes_the_next_one_skip_instead_of_queueing() {
        let (tx, rx) = mpsc::channel();
        let mut scraper = BlockingScraper::new(Gate(rx));
        let mut first = scraper.clone();
        let hung = tokio::spawn(async move {
            let mut b = Batch::new();
            first.scrape(1, &mut b).await.map(|()| b.len())
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut b = Batch::new();
        let err = scraper.scrape(2, &mut b).await.unwrap_err();
        assert!(err.to_string().contains("still running"), "{err}");
        tx.send(()).unwrap();
        assert_eq!(hung.await.unwrap().unwrap(), 1);
        tx.send(()).unwrap();
        scraper.scrape(3, &mut b).await.unwrap();
        assert_eq!(b.series[0].samples[0].timestamp_ms, 3);
    }
}
