//! What both protocols do with a decoded request: translate it, send the series on, and answer
//! with the OTLP partial-success response when some points could not be taken.

use std::sync::{Arc, Mutex};

use nodetel_core::Output;
use nodetel_core::sample::now_ms;
use nodetel_core::telemetry::ComponentTelemetry;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};

use super::translate::Translator;

/// The pipeline is shut down; the sender should retry later (gRPC Unavailable, HTTP 503).
#[derive(Debug, thiserror::Error)]
#[error("the receiver is shutting down; retry later")]
pub(crate) struct ShuttingDown;

/// The state both servers share.
pub(crate) struct Ingest {
    translator: Arc<Mutex<Translator>>,
    output: Output,
    identify_senders: bool,
}

impl Ingest {
    pub(crate) fn new(translator: Arc<Mutex<Translator>>, output: Output, identify_senders: bool) -> Ingest {
        Ingest {
            translator,
            output,
            identify_senders,
        }
    }

    /// Whether connections look up the local process that sends on them.
    pub(crate) fn identify_senders(&self) -> bool {
        self.identify_senders
    }

    /// This receiver's self-metrics.
    pub(crate) fn telemetry(&self) -> &Arc<ComponentTelemetry> {
        self.output.telemetry()
    }

    /// Translates and forwards one request, sent by local process `sender` when known.
    pub(crate) async fn export(
        &self,
        request: &ExportMetricsServiceRequest,
        sender: Option<u32>,
    ) -> Result<ExportMetricsServiceResponse, ShuttingDown> {
        let mut translation = {
            // The lock is held for the translation only, never across an await. A poisoned lock
            // only means a translation panicked; the caches are still usable.
            let mut translator = self.translator.lock().unwrap_or_else(|e| e.into_inner());
            translator.translate(request, now_ms())
        };
        let mut response = ExportMetricsServiceResponse::default();
        if translation.rejected > 0 {
            self.telemetry().add_discarded("rejected", translation.rejected);
            let error_message = translation.error.unwrap_or_default();
            tracing::debug!(rejected = translation.rejected, %error_message, "Data points rejected.");
            response.partial_success = Some(ExportMetricsPartialSuccess {
                rejected_data_points: translation.rejected as i64,
                error_message,
            });
        }
        translation.batch.sender_pid = sender;
        if !translation.batch.is_empty() {
            self.output.send(translation.batch).await.map_err(|_| ShuttingDown)?;
        }
        Ok(response)
    }
}
