//! WebSocket clients for MQTT-over-WebSocket listeners.
//!
//! [`ws_connect`] performs the real upgrade (over rustls with aws-lc-rs
//! when given a client config) and hands back the WebSocket, or the
//! broker's refusal. [`ws_tunnel`] is a local plain-TCP endpoint whose
//! every connection is carried over such a WebSocket in binary messages,
//! so rumqttc and the raw test client speak MQTT over WebSocket unchanged.

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message};

/// A TLS or plain TCP stream.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub type ClientWebSocket = WebSocketStream<Box<dyn Io>>;

/// Connect to `broker` (TLS with `tls`, else plain TCP) and upgrade to a
/// WebSocket at `path`, offering `subprotocol` when given. A refused
/// upgrade is `WsError::Http` with the broker's response.
pub async fn ws_connect(
    broker: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
    path: &str,
    subprotocol: Option<&str>,
) -> Result<(ClientWebSocket, Response), WsError> {
    let tcp = TcpStream::connect(broker).await?;
    tcp.set_nodelay(true)?;
    let (stream, scheme): (Box<dyn Io>, _) = match tls {
        Some(config) => {
            let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
            let tls = TlsConnector::from(config).connect(name, tcp).await?;
            (Box::new(tls), "wss")
        }
        None => (Box::new(tcp), "ws"),
    };
    let mut request =
        format!("{scheme}://localhost:{}{path}", broker.port()).into_client_request()?;
    if let Some(p) = subprotocol {
        let value = HeaderValue::from_str(p).map_err(std::io::Error::other)?;
        request.headers_mut().insert(SEC_WEBSOCKET_PROTOCOL, value);
    }
    tokio_tungstenite::client_async(request, stream).await
}

/// A local plain-TCP endpoint relaying each connection to `broker` over
/// a WebSocket at `/mqtt` with subprotocol `mqtt`. A refused TLS
/// handshake or upgrade closes the local connection.
pub async fn ws_tunnel(
    broker: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((plain, _)) = listener.accept().await {
            let tls = tls.clone();
            tokio::spawn(async move {
                let _ = plain.set_nodelay(true);
                if let Ok((ws, _)) = ws_connect(broker, tls, "/mqtt", Some("mqtt")).await {
                    relay(plain, ws).await;
                }
            });
        }
    });
    Ok(local)
}

/// Bytes from `plain` become binary messages, binary messages become
/// bytes, until either side closes.
async fn relay(plain: TcpStream, ws: ClientWebSocket) {
    let (mut to_broker, mut from_broker) = ws.split();
    let (mut read, mut write) = plain.into_split();
    let up = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let message = Message::Binary(Bytes::copy_from_slice(&buf[..n]));
                    if to_broker.send(message).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to_broker.close().await;
    };
    let down = async {
        while let Some(Ok(message)) = from_broker.next().await {
            let data = match message {
                Message::Binary(data) => data,
                Message::Close(_) => break,
                _ => continue,
            };
            if write.write_all(&data).await.is_err() {
                break;
            }
        }
        let _ = write.shutdown().await;
    };
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}
