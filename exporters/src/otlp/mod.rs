//! The `otlp` exporter: forwards the pipeline to another OpenTelemetry collector over OTLP/gRPC.
//!
//! Series are regrouped into OTLP metrics (see `regroup`, and README.md beside this file). Unavailable, ResourceExhausted,
//! DeadlineExceeded, Aborted, Cancelled and DataLoss answers are retryable (the server's
//! `google.rpc.RetryInfo` delay is honoured); any other status is permanent, so the runtime drops
//! and counts the batch. A partial-success answer is logged: the server has already decided.

mod config;
mod regroup;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nodetel_core::Batch;
use nodetel_core::component::{BoxError, ExportError, Exporter};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{Ascii, MetadataKey, MetadataValue};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};

pub use config::{Compression, OtlpExporterConfig, TlsConfig};

/// Why the exporter could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OtlpExporterError {
    /// The endpoint is not a usable URI.
    #[error("otlp exporter endpoint {endpoint:?} is invalid: {source}")]
    Endpoint {
        /// The endpoint as configured.
        endpoint: String,
        /// The parse or TLS setup error.
        source: tonic::transport::Error,
    },
    /// A header name or value cannot be sent as gRPC metadata.
    #[error("otlp exporter header {0:?} is not valid gRPC metadata")]
    Header(String),
}

/// The exporter.
pub struct OtlpExporter {
    endpoint: Endpoint,
    compression: Compression,
    timeout: Duration,
    headers: Arc<[(MetadataKey<Ascii>, MetadataValue<Ascii>)]>,
    /// Made on the first export: creating a channel needs the runtime, building does not.
    client: Option<MetricsServiceClient<Channel>>,
}

impl std::fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpExporter")
            .field("endpoint", &self.endpoint.uri())
            .finish_non_exhaustive()
    }
}

impl OtlpExporter {
    /// An exporter for a validated config. Connects lazily.
    pub fn new(config: OtlpExporterConfig) -> Result<OtlpExporter, OtlpExporterError> {
        let (uri, tls) = config.uri();
        let endpoint_error = |source| OtlpExporterError::Endpoint {
            endpoint: config.endpoint.clone(),
            source,
        };
        let mut endpoint = Endpoint::from_shared(uri)
            .map_err(endpoint_error)?
            .connect_timeout(config.timeout)
            .timeout(config.timeout);
        if tls {
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().with_webpki_roots())
                .map_err(endpoint_error)?;
        }
        let mut headers = Vec::new();
        for (k, v) in &config.headers {
            let key = MetadataKey::from_bytes(k.as_bytes()).map_err(|_| OtlpExporterError::Header(k.clone()))?;
            let value = v.parse().map_err(|_| OtlpExporterError::Header(k.clone()))?;
            headers.push((key, value));
        }
        Ok(OtlpExporter {
            endpoint,
            compression: config.compression,
            timeout: config.timeout,
            headers: headers.into(),
            client: None,
        })
    }

    fn client(&mut self) -> MetricsServiceClient<Channel> {
        let endpoint = &self.endpoint;
        let compression = self.compression;
        self.client
            .get_or_insert_with(|| {
                let client = MetricsServiceClient::new(endpoint.connect_lazy())
                    .accept_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(4 * 1024 * 1024);
                match compression {
                    Compression::Gzip => client.send_compressed(CompressionEncoding::Gzip),
                    Compression::None => client,
                }
            })
            .clone()
    }
}

#[async_trait]
impl Exporter for OtlpExporter {
    async fn export(&mut self, batch: Arc<Batch>) -> Result<(), ExportError> {
        if batch.is_empty() {
            return Ok(());
        }
        let body = regroup::to_request(&batch);
        let mut request = tonic::Request::new(body);
        request.set_timeout(self.timeout);
        for (k, v) in self.headers.iter() {
            request.metadata_mut().insert(k.clone(), v.clone());
        }
        let mut client = self.client();
        match client.export(request).await {
            Ok(response) => {
                if let Some(p) = &response.get_ref().partial_success
                    && p.rejected_data_points > 0
                {
                    tracing::warn!(
                        rejected = p.rejected_data_points,
                        message = %p.error_message,
                        "The OTLP receiver rejected some data points."
                    );
                }
                Ok(())
            }
            Err(status) => Err(classify(status)),
        }
    }
}

/// Sorts a failed call into retryable and permanent, with the server's retry delay if given.
pub(crate) fn classify(status: Status) -> ExportError {
    let retryable = matches!(
        status.code(),
        Code::Unavailable
            | Code::ResourceExhausted
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::Cancelled
            | Code::DataLoss
    );
    let retry_after = retry_delay(status.details());
    let source: BoxError = format!("OTLP export failed: {}: {}", status.code(), status.message()).into();
    if retryable {
        ExportError::Retryable { retry_after, source }
    } else {
        ExportError::Permanent(source)
    }
}

/// `google.rpc.Status`, as carried in `grpc-status-details-bin`.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<Any>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
struct Any {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";

fn retry_delay(details: &[u8]) -> Option<Duration> {
    if details.is_empty() {
        return None;
    }
    let status = RpcStatus::decode(details).ok()?;
    let any = status.details.iter().find(|a| a.type_url == RETRY_INFO_TYPE)?;
    let d = RetryInfo::decode(&any.value[..]).ok()?.retry_delay?;
    let secs = u64::try_from(d.seconds).ok()?;
    let nanos = u32::try_from(d.nanos).ok()?;
    Some(Duration::new(secs, nanos.min(999_999_999)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_retry_info(code: Code, delay: Duration) -> Status {
        let info = RetryInfo {
            retry_delay: Some(ProtoDuration {
                seconds: delay.as_secs() as i64,
                nanos: delay.subsec_nanos() as i32,
            }),
        };
        let details = RpcStatus {
            code: code as i32,
            message: "slow down".into(),
            details: vec![Any {
                type_url: RETRY_INFO_TYPE.into(),
                value: info.encode_to_vec(),
            }],
        };
        Status::with_details(code, "slow down", details.encode_to_vec().into())
    }

    #[test]
    fn transient_codes_are_retryable_and_the_rest_permanent() {
        for code in [Code::Unavailable, Code::ResourceExhausted, Code::DeadlineExceeded] {
            assert!(
                matches!(
                    classify(Status::new(code, "x")),
                    ExportError::Retryable { retry_after: None, .. }
                ),
                "{code:?}"
            );
        }
        for code in [
            Code::InvalidArgument,
            Code::Unimplemented,
            Code::PermissionDenied,
            Code::Internal,
        ] {
            assert!(
                matches!(classify(Status::new(code, "x")), ExportError::Permanent(_)),
                "{code:?}"
            );
        }
    }

    #[test]
    fn the_servers_retry_delay_is_honoured() {
        let e = classify(with_retry_info(Code::ResourceExhausted, Duration::from_millis(1500)));
        match e {
            ExportError::Retryable { retry_after, .. } => assert_eq!(retry_after, Some(Duration::from_millis(1500))),
            other => panic!("{other:?}"),
        }
        assert_eq!(retry_delay(b"\xff\xff"), None, "garbage details are ignored");
    }

    #[test]
    fn invalid_settings_fail_to_build() {
        let config = OtlpExporterConfig {
            endpoint: "bad endpoint with spaces".into(),
            ..OtlpExporterConfig::default()
        };
        assert!(OtlpExporter::new(config).is_err());
        let ok = OtlpExporterConfig {
            endpoint: "127.0.0.1:4317".into(),
            tls: TlsConfig { insecure: true },
            ..OtlpExporterConfig::default()
        };
        assert!(OtlpExporter::new(ok).is_ok());
    }
}
