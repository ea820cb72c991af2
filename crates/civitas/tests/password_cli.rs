//! `civitas password set|remove|list`: a password is printed once, only
//! its Argon2id hash is stored (0600), and a running broker accepts it
//! without a restart.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use anyhow::{Context, ensure};
use civitas_broker::password::{FILE_NAME, PasswordFile};
use civitas_broker::{AuthMode, BrokerConfig, Credentials, Transport};
use civitas_testkit::{TestBroker, TestBrokerOptions, listener, wait_for_async};

async fn civitas(data_dir: &Path, args: &[&str]) -> anyhow::Result<Output> {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_civitas"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("CIVITAS_CONFIG")
        .current_dir(data_dir.parent().unwrap_or(data_dir))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    Ok(tokio::time::timeout(Duration::from_secs(60), out).await??)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `password set` succeeds and prints only the password.
async fn set(data_dir: &Path, username: &str) -> anyhow::Result<String> {
    let out = civitas(data_dir, &["password", "set", username]).await?;
    ensure!(out.status.success(), "set failed: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let password = stdout.trim().to_string();
    ensure!(
        stdout.lines().count() == 1,
        "more than the password on stdout: {stdout}"
    );
    Ok(password)
}

#[tokio::test]
async fn set_list_and_remove() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let password = set(&data, "gw-1").await?;
    assert!(password.len() >= 24 && password.bytes().all(|b| b.is_ascii_alphanumeric()));

    let path = data.join(FILE_NAME);
    let stored = std::fs::read_to_string(&path)?;
    assert!(!stored.contains(&password), "the password itself is stored");
    assert!(stored.contains("gw-1:$argon2id$"), "{stored}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path)?.permissions().mode() & 0o777,
        0o600
    );
    assert!(Credentials::open(&path)?.verify("gw-1", password.as_bytes()));

    // A second set replaces the password.
    let second = set(&data, "gw-1").await?;
    let credentials = Credentials::open(&path)?;
    assert!(credentials.verify("gw-1", second.as_bytes()));
    assert!(!credentials.verify("gw-1", password.as_bytes()));
    set(&data, "gw:2").await?;
    let out = civitas(&data, &["password", "list"]).await?;
    assert_eq!(text(&out.stdout), "gw-1\ngw:2\n");

    let out = civitas(&data, &["password", "remove", "gw-1"]).await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(PasswordFile::new(&path).list()?, vec!["gw:2"]);
    let out = civitas(&data, &["password", "remove", "gw-1"]).await?;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no password"),
        "{}",
        text(&out.stderr)
    );

    for bad in ["gw 3", "", "gw/3"] {
        let out = civitas(&data, &["password", "set", bad]).await?;
        assert!(!out.status.success(), "{bad:?} accepted");
        assert!(
            text(&out.stderr).contains("invalid username"),
            "{}",
            text(&out.stderr)
        );
    }
    Ok(())
}

/// Whether rumqttc's CONNECT with these credentials is accepted.
async fn logs_in(port: u16, username: &str, password: &str) -> anyhow::Result<bool> {
    let mut options = rumqttc::MqttOptions::new(username, "127.0.0.1", port);
    options.set_credentials(username, password);
    let (_client, mut eventloop) = rumqttc::AsyncClient::new(options, 10);
    let first = tokio::time::timeout(Duration::from_secs(10), eventloop.poll())
        .await
        .context("no answer to CONNECT")?;
    Ok(match first {
        Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(ack))) => {
            ack.code == rumqttc::ConnectReturnCode::Success
        }
        Ok(_) | Err(_) => false,
    })
}

#[tokio::test]
async fn a_password_set_with_the_cli_works_on_a_running_broker() -> anyhow::Result<()> {
    let mut config = BrokerConfig::default();
    config
        .listeners
        .push(listener("gw", AuthMode::Password, Transport::Mqtt, false));
    let broker = TestBroker::start_with(TestBrokerOptions { config }).await?;
    let port = broker.addr_of("gw").port();
    let data = broker.data_dir.path();
    assert!(!logs_in(port, "gw-cli", "nothing yet").await?);

    let password = set(data, "gw-cli").await?;
    let password = password.as_str();
    wait_for_async(
        "the broker to accept the new password",
        Duration::from_secs(10),
        || async move { logs_in(port, "gw-cli", password).await.unwrap_or(false) },
    )
    .await?;

    let out = civitas(data, &["password", "remove", "gw-cli"]).await?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    wait_for_async(
        "the broker to refuse the removed password",
        Duration::from_secs(10),
        || async move { !logs_in(port, "gw-cli", password).await.unwrap_or(true) },
    )
    .await?;
    Ok(())
}
