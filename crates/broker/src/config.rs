//! Typed broker configuration: limits and the list of listeners.
//!
//! Every struct denies unknown fields so that a typo in `civitas.toml` is
//! an error at start, not a silently ignored setting.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// Protocol limits applied to every connection.
    #[serde(default)]
    pub limits: Limits,
    /// The listeners; by default a single mutual-TLS listener on 8883.
    #[serde(default = "default_listeners")]
    pub listeners: Vec<ListenerConfig>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            limits: Limits::default(),
            listeners: default_listeners(),
        }
    }
}

fn default_listeners() -> Vec<ListenerConfig> {
    vec![ListenerConfig {
        name: "mqtts".into(),
        bind: SocketAddr::from(([0, 0, 0, 0], 8883)),
        auth: AuthMode::Mtls,
        transport: Transport::Mqtt,
        tls: true,
        plaintext_acknowledged: false,
        client_id_must_match_identity: true,
        authorization: None,
        permissions: Permissions::device_default(),
    }]
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest MQTT packet accepted from a client, in bytes (fixed header
    /// included). Advertised to MQTT 5 clients as Maximum Packet Size.
    pub max_packet_size: u32,
    /// How many unacknowledged QoS 1/2 PUBLISHes a client may have
    /// towards the broker (MQTT 5 Receive Maximum).
    pub receive_maximum: u16,
    /// Cap on QoS 1/2 messages in flight towards one client, whatever
    /// Receive Maximum the client offers.
    pub max_inflight: u16,
    /// Messages queued for one session (connected or not) beyond the
    /// in-flight window; the oldest QoS 0 messages go first when full.
    pub max_queued_messages: usize,
    /// Time a client has to finish the TLS handshake and send CONNECT.
    pub connect_timeout_secs: u64,
    /// Longest keep-alive a client may ask for; a longer request is
    /// answered with this value as Server Keep Alive (MQTT 5).
    pub max_keep_alive_secs: u16,
    /// Longest session expiry interval granted. MQTT 3.1.1 persistent
    /// sessions (clean session = 0) get this value.
    pub max_session_expiry_secs: u32,
    /// Topic aliases a client may use towards the broker (MQTT 5).
    pub topic_alias_maximum: u16,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_packet_size: 1024 * 1024,
            receive_maximum: 100,
            max_inflight: 100,
            max_queued_messages: 1000,
            connect_timeout_secs: 10,
            max_keep_alive_secs: 1200,
            max_session_expiry_secs: 7 * 24 * 3600,
            topic_alias_maximum: 10,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// A client certificate signed by the civitas CA is required; the
    /// identity is the certificate's subject common name.
    Mtls,
    /// No authentication at all. Local development and conformance
    /// testing only: refused on a non-loopback address.
    Anonymous,
    /// A username and password issued by civitas (`civitas password set`),
    /// for gateways that cannot hold a certificate; the identity is the
    /// username. Needs TLS unless the listener binds a loopback address.
    Password,
}

/// What runs on top of the (TLS or plain) connection.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// MQTT directly on the stream (port 8883 by convention).
    #[default]
    Mqtt,
    /// MQTT over WebSocket inside TLS (subprotocol `mqtt`, any path), for
    /// browsers and networks that pass only HTTPS. Needs `tls = true`.
    Wss,
    /// MQTT over plaintext WebSocket. Needs `tls = false` and
    /// `plaintext_acknowledged = true`.
    Ws,
}

impl Transport {
    pub fn is_websocket(self) -> bool {
        matches!(self, Transport::Wss | Transport::Ws)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// A short name used in logs and metrics.
    pub name: String,
    /// Address and port to bind.
    pub bind: SocketAddr,
    /// How clients on this listener authenticate.
    #[serde(default = "default_auth")]
    pub auth: AuthMode,
    /// MQTT directly, or MQTT over WebSocket.
    #[serde(default)]
    pub transport: Transport,
    /// Serve TLS. Plain TCP requires `plaintext_acknowledged = true` as
    /// well, so that it can never be switched on by one stray line.
    #[serde(default = "yes")]
    pub tls: bool,
    /// The operator's explicit consent to a plaintext listener.
    #[serde(default)]
    pub plaintext_acknowledged: bool,
    /// Require the MQTT client id to equal the identity: the
    /// certificate's common name (mtls) or the username (password). A
    /// spoofed id is refused with reason 0x85.
    #[serde(default = "yes")]
    pub client_id_must_match_identity: bool,
    /// Who decides what a client may do: `"policies"` (AWS IoT policies
    /// attached in the device registry to the certificate, its thing and
    /// the thing's groups; default deny) or `"permissions"` (the
    /// `permissions` table below). Default: policies on mutual-TLS
    /// listeners, permissions on the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    /// What clients on this listener may publish and subscribe to, when
    /// authorization is by permissions.
    #[serde(default = "Permissions::device_default")]
    pub permissions: Permissions,
}

impl ListenerConfig {
    /// The authorization in force, with the per-auth-mode default applied.
    pub fn authorization(&self) -> Authorization {
        self.authorization.unwrap_or(match self.auth {
            AuthMode::Mtls => Authorization::Policies,
            _ => Authorization::Permissions,
        })
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Authorization {
    /// AWS IoT policies from the device registry.
    Policies,
    /// The listener's static permission table.
    Permissions,
}

fn default_auth() -> AuthMode {
    AuthMode::Mtls
}

fn yes() -> bool {
    true
}

/// Topic permissions. `${client_id}` in a filter stands for the client's
/// id. A deny entry wins over any allow entry.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Permissions {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
    pub deny_publish: Vec<String>,
    pub deny_subscribe: Vec<String>,
    /// Extra grants for named identities (client ids), such as an
    /// operator console that watches the whole city.
    pub identities: Vec<IdentityGrant>,
}

/// Topics some identities may use on top of the listener's base grants.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityGrant {
    pub identities: Vec<String>,
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

impl Permissions {
    /// A device may use its own subtree of the city namespace and its own
    /// AWS-style shadow topics, nothing else.
    pub fn device_default() -> Self {
        let own = vec![
            "city/+/things/${client_id}/#".to_string(),
            "$aws/things/${client_id}/#".to_string(),
        ];
        Permissions {
            publish: own.clone(),
            subscribe: own,
            deny_publish: Vec::new(),
            deny_subscribe: Vec::new(),
            identities: vec![IdentityGrant {
                identities: vec!["control-center".into()],
                publish: vec!["city/+/things/+/cmd/#".into()],
                subscribe: vec!["city/#".into()],
            }],
        }
    }

    /// Everything allowed: for the anonymous development listener.
    pub fn allow_all() -> Self {
        Permissions {
            publish: vec!["#".into()],
            subscribe: vec!["#".into()],
            deny_publish: Vec::new(),
            deny_subscribe: Vec::new(),
            identities: Vec::new(),
        }
    }
}
