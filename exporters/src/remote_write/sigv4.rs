//! SigV4 request signing for AMP, with credentials from the AWS default chain behind a cache.
//!
//! The payload hash is computed once per request body (see `encode::EncodedRequest`); signing an
//! attempt only formats the canonical request and runs the HMAC chain. Credentials are loaded at
//! the first send (inside the runtime), kept until five minutes before they expire, and never
//! appear in logs or error messages.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use tokio::sync::Mutex;

use crate::remote_write::config::SigV4AuthConfig;

/// Why a request could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// No signing region was configured or found.
    #[error(
        "no AWS region for SigV4: set region in the sigv4auth extension, use an aps-workspaces.<region> \
         endpoint, or set AWS_REGION"
    )]
    NoRegion,
    /// The default chain (or the assumed role) gave no credentials.
    #[error("bad AWS credentials: {0}")]
    Credentials(String),
    /// aws-sigv4 refused the request.
    #[error("SigV4 signing failed: {0}")]
    Sign(String),
}

enum Source {
    Static(Credentials),
    Chain {
        provider: Option<SharedCredentialsProvider>,
        cached: Option<Credentials>,
    },
}

/// Signs remote write requests.
pub struct Signer {
    region: Option<String>,
    service: String,
    assume: crate::remote_write::config::AssumeRoleConfig,
    source: Mutex<Source>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("region", &self.region)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// Refresh credentials this long before they expire.
const REFRESH_AHEAD: Duration = Duration::from_secs(300);

impl Signer {
    /// A signer using the default credential chain (and `assume_role`, if set). `region` comes
    /// from the extension, else the endpoint, else the AWS environment at first use.
    pub fn from_chain(cfg: &SigV4AuthConfig, endpoint_region: Option<String>) -> Signer {
        let region = Some(cfg.region.clone()).filter(|r| !r.is_empty()).or(endpoint_region);
        Signer {
            region,
            service: cfg.service.clone(),
            assume: cfg.assume_role.clone(),
            source: Mutex::new(Source::Chain {
                provider: None,
                cached: None,
            }),
        }
    }

    /// A signer with fixed credentials (tests and static setups).
    pub fn with_credentials(region: &str, service: &str, credentials: Credentials) -> Signer {
        Signer {
            region: Some(region.to_owned()),
            service: service.to_owned(),
            assume: Default::default(),
            source: Mutex::new(Source::Static(credentials)),
        }
    }

    /// A signer with credentials from `provider`, cached until five minutes before they expire
    /// (embedders with their own credential source, and tests of expiry).
    pub fn with_provider(region: &str, service: &str, provider: SharedCredentialsProvider) -> Signer {
        Signer {
            region: Some(region.to_owned()),
            service: service.to_owned(),
            assume: Default::default(),
            source: Mutex::new(Source::Chain {
                provider: Some(provider),
                cached: None,
            }),
        }
    }

    /// The configured signing region, if any.
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// Forgets cached credentials, so the next signature loads fresh ones (the endpoint said the
    /// token expired). Returns false for fixed credentials, which nothing can refresh.
    pub async fn invalidate(&self) -> bool {
        match &mut *self.source.lock().await {
            Source::Chain { cached, .. } => {
                *cached = None;
                true
            }
            Source::Static(_) => false,
        }
    }

    async fn credentials(&self) -> Result<(Credentials, String), SignError> {
        let mut source = self.source.lock().await;
        match &mut *source {
            Source::Static(c) => {
                let region = self.region.clone().ok_or(SignError::NoRegion)?;
                Ok((c.clone(), region))
            }
            Source::Chain { provider, cached } => {
                let region = match &self.region {
                    Some(r) => r.clone(),
                    None => env_region().ok_or(SignError::NoRegion)?,
                };
                if let Some(c) = cached.as_ref()
                    && c.expiry().is_none_or(|e| e > SystemTime::now() + REFRESH_AHEAD)
                {
                    return Ok((c.clone(), region));
                }
                if provider.is_none() {
                    *provider = Some(self.load_provider(&region).await?);
                }
                let p = provider
                    .as_ref()
                    .ok_or_else(|| SignError::Credentials("no provider".into()))?;
                let fresh = p
                    .provide_credentials()
                    .await
                    .map_err(|e| SignError::Credentials(e.to_string()))?;
                *cached = Some(fresh.clone());
                Ok((fresh, region))
            }
        }
    }

    async fn load_provider(&self, region: &str) -> Result<SharedCredentialsProvider, SignError> {
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_owned()))
            .load()
            .await;
        let base = conf
            .credentials_provider()
            .ok_or_else(|| SignError::Credentials("the AWS default credential chain found no provider".into()))?;
        if self.assume.arn.is_empty() {
            return Ok(base);
        }
        let sts_region = if self.assume.sts_region.is_empty() {
            region.to_owned()
        } else {
            self.assume.sts_region.clone()
        };
        let session = if self.assume.session_name.is_empty() {
            "nodetel".to_owned()
        } else {
            self.assume.session_name.clone()
        };
        let mut b = aws_config::sts::AssumeRoleProvider::builder(self.assume.arn.clone())
            .session_name(session)
            .region(aws_config::Region::new(sts_region))
            .configure(&conf);
        if !self.assume.external_id.is_empty() {
            b = b.external_id(self.assume.external_id.clone());
        }
        Ok(SharedCredentialsProvider::new(b.build().await))
    }

    /// Loads credentials now, so that a missing role shows at start-up rather than at the first
    /// send. Returns the error text (without secrets) when there are none.
    pub async fn check(&self) -> Result<(), SignError> {
        self.credentials().await.map(|_| ())
    }

    /// The SigV4 headers (`authorization`, `x-amz-date`, maybe `x-amz-security-token`) for a POST
    /// of a body whose SHA-256 is `payload_sha256`, over `headers` (which are signed too).
    pub async fn sign(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        payload_sha256: &str,
        now: SystemTime,
    ) -> Result<Vec<(&'static str, String)>, SignError> {
        let (creds, region) = self.credentials().await?;
        let identity = creds.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&region)
            .name(&self.service)
            .time(now)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| SignError::Sign(e.to_string()))?
            .into();
        let request = SignableRequest::new(
            "POST",
            url,
            headers.iter().copied(),
            SignableBody::Precomputed(payload_sha256.to_owned()),
        )
        .map_err(|e| SignError::Sign(e.to_string()))?;
        let (instructions, _) = sign(request, &params)
            .map_err(|e| SignError::Sign(e.to_string()))?
            .into_parts();
        let (headers, _) = instructions.into_parts();
        Ok(headers.into_iter().map(|h| (h.name(), h.value().to_owned())).collect())
    }
}

fn env_region() -> Option<String> {
    ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

/// A shared signer.
pub type SharedSigner = Arc<Signer>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn signs_with_the_precomputed_hash_and_keeps_secrets_out() {
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        );
        let s = Signer::with_credentials("us-west-2", "aps", creds);
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let h = s
            .sign(
                "https://aps-workspaces.us-west-2.amazonaws.com/workspaces/ws-1/api/v1/remote_write",
                &[("content-type", "application/x-protobuf")],
                hash,
                t,
            )
            .await
            .unwrap();
        let auth = &h.iter().find(|(n, _)| *n == "authorization").unwrap().1;
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-west-2/aps/aws4_request"),
            "{auth}"
        );
        assert!(auth.contains("SignedHeaders=content-type;host;x-amz-date"), "{auth}");
        assert!(!auth.contains("wJalr"), "the secret never leaves the signer");
        let other = s
            .sign(
                "https://aps-workspaces.us-west-2.amazonaws.com/workspaces/ws-1/api/v1/remote_write",
                &[("content-type", "application/x-protobuf")],
                &hash.replace('e', "f"),
                t,
            )
            .await
            .unwrap();
        assert_ne!(h, other, "the payload hash is part of the signature");
        assert!(format!("{s:?}").contains("us-west-2"));
    }
}
