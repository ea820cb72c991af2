//! `civitas ca`: the certificate authority's own keys. The root key is
//! only needed to sign a new issuing CA, so it can be exported for
//! offline keeping and removed from the server.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use civitas_pki::{CertificateAuthority, ROOT_CERT_FILE, ROOT_KEY_FILE};
use clap::{Args, Subcommand};

use super::print_json;
use crate::config::Config;

#[derive(Args, Debug)]
pub struct CaArgs {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: CaCommand,
}

#[derive(Subcommand, Debug)]
enum CaCommand {
    /// Write the root certificate and root private key to FILE (0600) for
    /// offline keeping; with --remove-key, then delete the key here.
    ExportRoot {
        /// Where to write (must not exist).
        #[arg(long)]
        out: PathBuf,
        /// Remove the root key from the data directory once exported.
        #[arg(long)]
        remove_key: bool,
    },
}

pub fn run(config: &Config, args: CaArgs) -> anyhow::Result<()> {
    match args.command {
        CaCommand::ExportRoot { out, remove_key } => {
            let dir = crate::admin::ca_dir(&config.data_dir);
            export_root(&dir, &out, remove_key).context("ca export-root")?;
            if args.json {
                return print_json(&serde_json::json!({
                    "exported": out,
                    "root_key_removed": remove_key,
                }));
            }
            println!(
                "Exported the root certificate and key to {}.",
                out.display()
            );
            if remove_key {
                println!(
                    "Removed {}; civitas keeps issuing with the issuing CA. Keep the export offline: it is the only copy of the root key.",
                    dir.join(ROOT_KEY_FILE).display()
                );
            } else {
                eprintln!(
                    "The export holds the root private key; keep it offline. Add --remove-key to delete the copy in the data directory."
                );
            }
            Ok(())
        }
    }
}

fn export_root(dir: &Path, out: &Path, remove_key: bool) -> anyhow::Result<()> {
    let ca = CertificateAuthority::load(dir)?;
    if !ca.has_root_key() {
        bail!(
            "{} is not in {}: the root key was already removed",
            ROOT_KEY_FILE,
            dir.display()
        );
    }
    let key_path = dir.join(ROOT_KEY_FILE);
    let key = std::fs::read_to_string(&key_path)
        .with_context(|| format!("reading {}", key_path.display()))?;
    let cert = std::fs::read_to_string(dir.join(ROOT_CERT_FILE))
        .with_context(|| format!("reading {}", dir.join(ROOT_CERT_FILE).display()))?;
    let contents = format!("{cert}{key}");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .with_context(|| format!("creating {}", out.display()))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", out.display()))?;
    drop(file);
    // Only delete once the export is known to be complete on disk.
    let written =
        std::fs::read_to_string(out).with_context(|| format!("reading back {}", out.display()))?;
    if written != contents {
        bail!(
            "{} does not read back as written; the root key was kept",
            out.display()
        );
    }
    if remove_key {
        std::fs::remove_file(&key_path)
            .with_context(|| format!("removing {}", key_path.display()))?;
        CertificateAuthority::load(dir).context("the CA without its root key")?;
    }
    Ok(())
}
