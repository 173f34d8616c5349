//! Component types that exist only in tests: an exporter that references an authenticator
//! extension, so extension checks and build contexts can be tested without network code.

use std::sync::Arc;

use async_trait::async_trait;
use nodetel_core::config::{BuildContext, ExporterConfig, ExtensionConfig, FieldError, Validate};
use nodetel_core::{Batch, BoxError, ExportError, Exporter};
use serde::Deserialize;

/// `refsink`: an exporter with an optional `auth.authenticator` that must name a `refauth`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RefSinkConfig {
    pub(crate) endpoint: String,
    pub(crate) auth: Option<RefSinkAuth>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefSinkAuth {
    pub(crate) authenticator: String,
}

impl Validate for RefSinkConfig {
    fn validate(&self) -> Vec<FieldError> {
        if self.endpoint.is_empty() {
            vec![FieldError::new("endpoint", "missing; set the URL to send to")]
        } else {
            Vec::new()
        }
    }
}

impl ExporterConfig for RefSinkConfig {
    const TYPE: &'static str = "refsink";

    fn build(&self, cx: &BuildContext) -> Result<Box<dyn Exporter>, BoxError> {
        let region = match &self.auth {
            Some(a) => Some(
                cx.extension::<RefAuthConfig>(&a.authenticator)
                    .ok_or_else(|| format!("{}: extension {} is not in the build context", cx.id, a.authenticator))?
                    .region
                    .clone(),
            ),
            None => None,
        };
        Ok(Box::new(RefSink {
            built_as: format!("{} on {} region {:?}", cx.id, cx.hostname, region),
        }))
    }

    fn extension_refs(&self) -> Vec<(String, String, &'static str)> {
        self.auth
            .iter()
            .map(|a| {
                (
                    "auth.authenticator".to_owned(),
                    a.authenticator.clone(),
                    RefAuthConfig::TYPE,
                )
            })
            .collect()
    }
}

/// What a built `refsink` knows about how it was built.
pub(crate) struct RefSink {
    pub(crate) built_as: String,
}

#[async_trait]
impl Exporter for RefSink {
    async fn export(&mut self, _batch: Arc<Batch>) -> Result<(), ExportError> {
        Err(ExportError::Permanent(self.built_as.clone().into()))
    }
}

/// `refauth`: an authenticator-like extension.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RefAuthConfig {
    pub(crate) region: String,
}

impl Validate for RefAuthConfig {}

impl ExtensionConfig for RefAuthConfig {
    const TYPE: &'static str = "refauth";
}

/// The built-in types plus the test-only ones.
pub(crate) fn components() -> crate::Components {
    let mut c = crate::Components::builtin();
    c.with_exporter::<RefSinkConfig>().with_extension::<RefAuthConfig>();
    c
}
