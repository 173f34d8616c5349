//! SigV4 with credentials from the AWS default chain (the environment provider here), checked
//! by the strict receiver's independent signature verification. The chain reads the process
//! environment, so the check runs in a child process that gets fixed fake credentials; IMDS
//! and the shared config files are switched off so nothing leaves the machine.

// Test helpers outside #[test] functions: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod remote_write_support;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use nodetel_core::component::Exporter;
use nodetel_exporters::remote_write::{RemoteWriteExporter, SigV4AuthConfig, Signer};
use remote_write_support::*;

const CHILD: &str = "child_signs_with_credentials_from_the_environment";

#[test]
fn default_chain_credentials_sign_requests() {
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", CHILD, "--ignored", "--nocapture", "--test-threads=1"])
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/nodetel-test/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/nodetel-test/credentials")
        .env("NODETEL_SIGV4_CHILD", "1")
        .status()
        .unwrap();
    assert!(status.success(), "the child test failed: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by default_chain_credentials_sign_requests with a prepared environment"]
async fn child_signs_with_credentials_from_the_environment() {
    assert_eq!(
        std::env::var("NODETEL_SIGV4_CHILD").as_deref(),
        Ok("1"),
        "run through the parent test"
    );
    let server = TestServer::start().await;
    let auth = SigV4AuthConfig {
        region: REGION.into(),
        ..SigV4AuthConfig::default()
    };
    let signer = Arc::new(Signer::from_chain(&auth, None));
    tokio::time::timeout(Duration::from_secs(20), signer.check())
        .await
        .unwrap()
        .unwrap();
    let cfg = config(&server.url());
    let mut exp = RemoteWriteExporter::new(&cfg, &context("chain"), Some(signer)).unwrap();
    exp.export(Arc::new(batch(4, 1234))).await.unwrap();
    exp.shutdown().await.unwrap();
    assert_eq!(
        server.violations(),
        Vec::<String>::new(),
        "signature verified independently"
    );
    assert_eq!(server.accepted_samples(), 4);
}
