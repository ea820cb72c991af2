//! Listener kinds beyond the default mutual-TLS one: a helper to declare
//! password and WebSocket listeners, and the credential file of a test
//! broker's password listeners.

use std::net::SocketAddr;

use civitas_broker::password::{FILE_NAME, PasswordFile};
use civitas_broker::{AuthMode, ListenerConfig, Permissions, Transport};

use crate::server::TestBroker;

/// A listener named `name` on loopback (the test broker rebinds it to
/// port 0) with the device-default permissions; plaintext when `tls` is
/// false, acknowledged as such.
pub fn listener(name: &str, auth: AuthMode, transport: Transport, tls: bool) -> ListenerConfig {
    ListenerConfig {
        name: name.into(),
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        auth,
        transport,
        tls,
        plaintext_acknowledged: !tls,
        client_id_must_match_identity: true,
        authorization: None,
        permissions: Permissions::device_default(),
    }
}

impl TestBroker {
    /// The credential file password listeners check (`DATA_DIR/passwords`);
    /// the running broker follows its changes within a few tens of ms.
    pub fn password_file(&self) -> PasswordFile {
        PasswordFile::new(self.data_dir.path().join(FILE_NAME))
    }

    /// Issue a password for `username`, as `civitas password set` does,
    /// and have the running broker take it at once (rather than at its
    /// next poll of the file).
    pub fn set_password(&self, username: &str) -> anyhow::Result<String> {
        let password = self.password_file().set(username)?;
        if let Some(c) = self.credentials() {
            c.reload()?;
        }
        Ok(password)
    }
}
