//! `civitas password`: issue, revoke and list the passwords of
//! `auth = "password"` listeners. Only Argon2id hashes are stored (in
//! `DATA_DIR/passwords`); a running civitas picks changes up on its own.

use anyhow::{Context, bail};
use civitas_broker::password::{FILE_NAME, PasswordFile, validate_username};
use clap::Subcommand;

use crate::config::Config;

#[derive(Subcommand, Debug)]
pub enum PasswordCommand {
    /// Issue a new random password for USERNAME (replacing any old one)
    /// and print it once; it cannot be shown again.
    Set { username: String },
    /// Revoke USERNAME's password: new connections with it are refused.
    Remove { username: String },
    /// List the usernames that have a password.
    List,
}

pub fn run(config: &Config, command: PasswordCommand) -> anyhow::Result<()> {
    let file = PasswordFile::new(config.data_dir.join(FILE_NAME));
    let reload = config.tls.reload_interval_secs.max(1);
    match command {
        PasswordCommand::Set { username } => {
            validate_username(&username)?;
            crate::up::create_private_dir(&config.data_dir)?;
            let password = file
                .set(&username)
                .with_context(|| format!("issuing a password for {username}"))?;
            // The password alone on stdout, so scripts can capture it.
            println!("{password}");
            eprintln!(
                "Issued a password for {username}; it is shown only this once. A running civitas accepts it within {reload} s."
            );
            Ok(())
        }
        PasswordCommand::Remove { username } => {
            if !file.remove(&username)? {
                bail!("{username} has no password in {}", file.path().display());
            }
            eprintln!(
                "Removed the password of {username}; a running civitas refuses it for new connections within {reload} s."
            );
            Ok(())
        }
        PasswordCommand::List => {
            for name in file.list()? {
                println!("{name}");
            }
            Ok(())
        }
    }
}
