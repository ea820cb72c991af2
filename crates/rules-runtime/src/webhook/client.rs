//! One HTTPS POST: TCP, TLS with rustls on aws-lc-rs (verified against a
//! CA file or the system's roots), then hyper's HTTP/1.1 client. One
//! connection per request: webhooks are infrequent enough that keeping
//! connections alive is not worth the state.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http_body_util::Full;
use hyper::Request;
use hyper::header::{HOST, HeaderName, HeaderValue};
use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::actions::HttpCall;

/// Why a POST did not get a 2xx answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PostError {
    /// Worth trying again later: no connection, TLS or HTTP failure, no
    /// answer in time, or a 5xx/408/429 status.
    #[error("{0}")]
    Transient(String),
    /// Trying again will not help: a bad request or a 4xx status.
    #[error("{0}")]
    Permanent(String),
}

/// A TLS client configuration trusting the PEM certificates in `ca_file`,
/// or the system's roots without one (loaded once).
pub(crate) fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    match ca_file {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("{}: no certificate in the file", path.display()));
            }
            build(roots)
        }
        None => {
            static SYSTEM: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
            SYSTEM
                .get_or_init(|| {
                    let found = rustls_native_certs::load_native_certs();
                    let mut roots = RootCertStore::empty();
                    roots.add_parsable_certificates(found.certs);
                    if roots.is_empty() {
                        return Err("no system root certificates found; give caFile".into());
                    }
                    build(roots)
                })
                .clone()
        }
    }
}

fn build(roots: RootCertStore) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// POSTs `call`, giving up after `timeout`; `Ok` with the 2xx status.
pub(crate) async fn post(
    tls: &Arc<ClientConfig>,
    call: &HttpCall,
    timeout: Duration,
) -> Result<u16, PostError> {
    match tokio::time::timeout(timeout, attempt(tls, call)).await {
        Ok(result) => result,
        Err(_) => Err(PostError::Transient(format!(
            "no answer within {} ms",
            timeout.as_millis()
        ))),
    }
}

async fn attempt(tls: &Arc<ClientConfig>, call: &HttpCall) -> Result<u16, PostError> {
    let uri =
        crate::actions::check_url(&call.url).map_err(|e| PostError::Permanent(e.to_string()))?;
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .ok_or_else(|| PostError::Permanent(format!("{:?} has no host", call.url)))?;
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(443);
    let server_name = ServerName::try_from(host.clone())
        .map_err(|e| PostError::Permanent(format!("{host:?}: {e}")))?;
    let transient = |what: &str, e: &dyn std::fmt::Display| {
        PostError::Transient(format!("{what} {authority}: {e}"))
    };

    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| transient("connecting to", &e))?;
    let stream = TlsConnector::from(tls.clone())
        .connect(server_name, tcp)
        .await
        .map_err(|e| transient("TLS with", &e))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| transient("HTTP with", &e))?;
    let driver = tokio::spawn(connection);

    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = Request::post(path)
        .body(Full::new(call.body.clone()))
        .map_err(|e| PostError::Permanent(e.to_string()))?;
    let headers = request.headers_mut();
    headers.insert(
        HOST,
        HeaderValue::from_str(&authority).map_err(|e| PostError::Permanent(e.to_string()))?,
    );
    for (name, value) in &call.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| PostError::Permanent(format!("header {name:?}: {e}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|e| PostError::Permanent(format!("header {name}: {e}")))?;
        headers.insert(name, value);
    }
    let answer = sender.send_request(request).await;
    driver.abort();
    let status = answer.map_err(|e| transient("request to", &e))?.status();
    let code = status.as_u16();
    if status.is_success() {
        Ok(code)
    } else if status.is_server_error() || code == 408 || code == 429 {
        Err(PostError::Transient(format!(
            "{authority} answered {status}"
        )))
    } else {
        Err(PostError::Permanent(format!(
            "{authority} answered {status}"
        )))
    }
}
