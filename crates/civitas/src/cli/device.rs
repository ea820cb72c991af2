//! `civitas device`: devices as operators think of them — a thing with
//! its certificate and policy, delivered as a ready-to-use bundle.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use civitas_registry::{
    AdminClient, AdminRequest, AdminResponse, CertificateStatus, DeletedThing, DeviceAdded,
    DevicePolicy, NewDevice, NewThing,
};
use civitas_store::{Store, StoreOptions};
use clap::{Args, Subcommand};
use serde::Serialize;

use super::{Admin, call, key_values, or_dash, print_fields, print_json, print_table, time};
use crate::config::Config;
use crate::telemetry_wiring::{ADMIN_SERVICE, Shredded, TelemetryRequest};

#[derive(Args, Debug)]
pub struct DeviceArgs {
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: DeviceCommand,
}

#[derive(Subcommand, Debug)]
enum DeviceCommand {
    /// Register a device: thing, certificate (ACTIVE) and policy, and write
    /// its bundle (NAME.pem, NAME.key, ca.pem, connect.txt).
    Add {
        name: String,
        /// Thing type (must exist: `civitas type create`).
        #[arg(long = "type")]
        thing_type: Option<String>,
        /// Sign this CSR instead of generating a key.
        #[arg(long)]
        csr: Option<PathBuf>,
        /// A thing attribute, KEY=VALUE (repeatable).
        #[arg(long = "attr", value_name = "KEY=VALUE")]
        attrs: Vec<String>,
        /// A thing group to join (must exist; repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Attach this policy instead of the standard device policy.
        #[arg(long, conflicts_with = "no_policy")]
        policy: Option<String>,
        /// Attach no policy.
        #[arg(long)]
        no_policy: bool,
        /// Certificate validity in days (default: tls.device_cert_days).
        #[arg(long)]
        days: Option<u32>,
        /// Bundle directory (default: DATA_DIR/devices/NAME).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List devices (things).
    List,
    /// A device with its certificates and the policies that reach it.
    Show { name: String },
    /// Revoke every certificate of the device (into the CRL).
    Revoke { name: String },
    /// Switch the device's certificates off (reversible).
    Deactivate { name: String },
    /// Switch the device's certificates back on (not replaced ones).
    Activate { name: String },
    /// Delete the device: its certificates are revoked.
    Delete {
        name: String,
        /// Also crypto-shred the device's stored telemetry.
        #[arg(long)]
        shred: bool,
    },
}

pub fn run(config: &Config, args: DeviceArgs) -> anyhow::Result<()> {
    let json = args.json;
    match args.command {
        DeviceCommand::Add {
            name,
            thing_type,
            csr,
            attrs,
            groups,
            policy,
            no_policy,
            days,
            out,
        } => {
            let context = || format!("device add {name}");
            let csr = csr
                .map(|p| super::read_file(&p, "CSR"))
                .transpose()
                .with_context(context)?;
            let device = NewDevice {
                thing: NewThing {
                    name: name.clone(),
                    thing_type,
                    attributes: key_values(&attrs, "--attr").with_context(context)?,
                    groups,
                },
                csr,
                validity_secs: days.map(|d| u64::from(d) * 86400),
                policy: match (policy, no_policy) {
                    (Some(p), _) => DevicePolicy::Named(p),
                    (None, true) => DevicePolicy::Nothing,
                    (None, false) => DevicePolicy::Default,
                },
            };
            let mut admin = Admin::open(config)?;
            let added = (|| {
                Ok(call!(
                    admin,
                    AdminRequest::AddDevice { device },
                    DeviceAdded
                ))
            })()
            .with_context(context)?;
            let dir = super::bundle_dir(config, &name, out);
            let files = write_bundle(config, &dir, &added).with_context(context)?;
            report_added(&added, &files, json)
        }
        DeviceCommand::List => {
            let mut admin = Admin::open(config)?;
            let things = call!(admin, AdminRequest::ListThings, Things);
            if json {
                return print_json(&things);
            }
            let rows: Vec<Vec<String>> = things
                .iter()
                .map(|t| {
                    vec![
                        t.name.clone(),
                        or_dash(t.thing_type.as_deref()),
                        or_dash(Some(&t.groups.join(","))),
                        t.attributes.len().to_string(),
                        time(t.created_ms),
                    ]
                })
                .collect();
            print_table(&["NAME", "TYPE", "GROUPS", "ATTRIBUTES", "CREATED"], &rows);
            Ok(())
        }
        DeviceCommand::Show { name } => {
            let mut admin = Admin::open(config)?;
            let d = (|| {
                Ok(call!(
                    admin,
                    AdminRequest::DescribeThing { name: name.clone() },
                    ThingDescription
                ))
            })()
            .with_context(|| format!("device show {name}"))?;
            if json {
                return print_json(&d);
            }
            let attributes: Vec<String> = d
                .thing
                .attributes
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            print_fields(&[
                ("name", d.thing.name.clone()),
                ("type", or_dash(d.thing.thing_type.as_deref())),
                ("groups", or_dash(Some(&d.thing.groups.join(", ")))),
                ("attributes", or_dash(Some(&attributes.join(", ")))),
                ("created", time(d.thing.created_ms)),
                ("version", d.thing.version.to_string()),
            ]);
            println!();
            let rows: Vec<Vec<String>> = d
                .certificates
                .iter()
                .map(|c| {
                    vec![
                        c.serial.clone(),
                        c.status.to_string(),
                        time(c.not_after_ms),
                        or_dash(c.replaced_by.as_deref()),
                    ]
                })
                .collect();
            print_table(
                &["CERTIFICATE", "STATUS", "NOT AFTER", "REPLACED BY"],
                &rows,
            );
            println!();
            let rows: Vec<Vec<String>> = d
                .policies
                .iter()
                .map(|p| vec![p.policy.clone(), p.via.clone()])
                .collect();
            print_table(&["POLICY", "ATTACHED TO"], &rows);
            Ok(())
        }
        DeviceCommand::Revoke { name } => {
            let mut admin = Admin::open(config)?;
            let request = AdminRequest::RevokeThingCertificates {
                thing: name.clone(),
            };
            let serials = (|| Ok(call!(admin, request, Serials)))()
                .with_context(|| format!("device revoke {name}"))?;
            if json {
                return print_json(&serials);
            }
            if serials.is_empty() {
                println!("{name} has no certificate left to revoke.");
            }
            for s in &serials {
                println!("revoked {s}");
            }
            reload_note(config, &serials);
            Ok(())
        }
        DeviceCommand::Deactivate { name } => {
            set_status(config, &name, CertificateStatus::Inactive, json)
        }
        DeviceCommand::Activate { name } => {
            set_status(config, &name, CertificateStatus::Active, json)
        }
        DeviceCommand::Delete { name, shred } => {
            if shred {
                return delete_and_shred(config, &name, json);
            }
            let mut admin = Admin::open(config)?;
            let deleted = (|| {
                Ok(call!(
                    admin,
                    AdminRequest::DeleteThing { name: name.clone() },
                    ThingDeleted
                ))
            })()
            .with_context(|| format!("device delete {name}"))?;
            if json {
                return print_json(&deleted);
            }
            report_deleted(config, &name, &deleted);
            Ok(())
        }
    }
}

fn report_deleted(config: &Config, name: &str, deleted: &DeletedThing) {
    println!("deleted {name}");
    for s in &deleted.revoked {
        println!("revoked {s}");
    }
    for p in &deleted.detached_policies {
        println!("detached policy {p}");
    }
    reload_note(config, &deleted.revoked);
}

/// What `device delete --shred` did.
#[derive(Serialize)]
struct DeletedAndShredded {
    /// None when the device had been deleted before.
    deleted: Option<DeletedThing>,
    shredded: Shredded,
}

/// Deletes the device, then crypto-shreds its telemetry: through the
/// running server's `telemetry` service, or on the store opened here.
fn delete_and_shred(config: &Config, name: &str, json: bool) -> anyhow::Result<()> {
    let mut admin = Admin::open(config)?;
    let request = AdminRequest::DeleteThing {
        name: name.to_owned(),
    };
    let response = match &mut admin {
        Admin::Remote(client) => client.call(&request)?,
        Admin::Local {
            registry, actor, ..
        } => registry.execute(actor, request),
    };
    let deleted = match response {
        AdminResponse::ThingDeleted(d) => Some(d),
        // Deleted before, perhaps by a run whose shred failed: the
        // telemetry may still be there, so the shred is still done.
        AdminResponse::Error(problem) if problem.code == "not_found" => None,
        AdminResponse::Error(problem) => bail!(
            "device delete {name}: {}; nothing was deleted or shredded",
            problem.message
        ),
        other => bail!("unexpected response from civitas: {other:?}"),
    };
    if !json {
        match &deleted {
            Some(d) => report_deleted(config, name, d),
            None => println!("{name} is not registered (deleted before); shredding its telemetry"),
        }
    }
    let shredded = match admin {
        Admin::Remote(mut client) => shred_remote(&mut client, name),
        local @ Admin::Local { .. } => {
            // The store and audit log are opened again for the telemetry
            // store: they take one opener at a time.
            drop(local);
            shred_local(config, name)
        }
    };
    let shredded = shredded.map_err(|e| {
        let done = if deleted.is_some() {
            "the device was deleted and its certificates revoked"
        } else {
            "the device was deleted before"
        };
        anyhow!(
            "device delete {name} --shred: {done}, but its telemetry was NOT shredded: {e:#}\n\
             Whatever telemetry it has is still readable; run `civitas device delete {name} --shred` again to retry the shred."
        )
    })?;
    if json {
        return print_json(&DeletedAndShredded { deleted, shredded });
    }
    if shredded.key_destroyed {
        println!(
            "shredded the telemetry of {name}: its key {} is destroyed, its stored readings can no longer be read",
            key_name(name)
        );
    } else {
        println!(
            "{name} has no telemetry key left to destroy (no readings were stored, or they were shredded before): none of its telemetry is readable"
        );
    }
    Ok(())
}

fn key_name(thing: &str) -> String {
    civitas_telemetry::device_key_id(thing)
        .map_or_else(|_| format!("device/{thing}"), |k| k.to_string())
}

fn shred_remote(client: &mut AdminClient, name: &str) -> anyhow::Result<Shredded> {
    let request = AdminRequest::Service {
        service: ADMIN_SERVICE.into(),
        request: serde_json::to_value(TelemetryRequest::Shred {
            thing: name.to_owned(),
        })?,
    };
    match client.call(&request)? {
        AdminResponse::Service(answer) => {
            serde_json::from_value(answer).context("unreadable answer from the telemetry service")
        }
        AdminResponse::Error(problem) => bail!(problem.message),
        other => bail!("unexpected response from civitas: {other:?}"),
    }
}

/// No server: the key ring, audit log, store and telemetry store opened
/// here, the key's destruction written to the audit log before closing.
fn shred_local(config: &Config, name: &str) -> anyhow::Result<Shredded> {
    let data_dir = &config.data_dir;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (ring, audit) = crate::security_wiring::open(data_dir)?;
    let db = data_dir.join("civitas.redb");
    let store = Store::open(&db, StoreOptions::default())
        .with_context(|| format!("opening {}", db.display()))?;
    let result = runtime.block_on(async {
        let telemetry = crate::telemetry_wiring::open(store.clone(), &ring).await?;
        crate::telemetry_wiring::shred(&telemetry, name).await
    });
    // Drained whatever the result: a failed shred may still have changed
    // the ring.
    ring.audit_key_events(&crate::security_wiring::AuditEvents(audit.sink()));
    audit.close().context("closing the audit log")?;
    store
        .close()
        .with_context(|| format!("closing {}", db.display()))?;
    result
}

fn set_status(
    config: &Config,
    name: &str,
    status: CertificateStatus,
    json: bool,
) -> anyhow::Result<()> {
    let verb = match status {
        CertificateStatus::Active => "activate",
        _ => "deactivate",
    };
    let mut admin = Admin::open(config)?;
    let request = AdminRequest::SetThingCertificatesStatus {
        thing: name.to_owned(),
        status,
    };
    let serials = (|| Ok(call!(admin, request, Serials)))()
        .with_context(|| format!("device {verb} {name}"))?;
    if json {
        return print_json(&serials);
    }
    if serials.is_empty() {
        println!("{name}: no certificate changed");
    }
    for s in &serials {
        println!("{s} is now {status}");
    }
    Ok(())
}

/// Tells the operator when the revocation takes effect.
pub(super) fn reload_note(config: &Config, serials: &[String]) {
    if !serials.is_empty() {
        eprintln!(
            "The CRL ({}) lists them now; a running civitas refuses them for new connections within {} s.",
            crate::admin::ca_dir(&config.data_dir)
                .join(civitas_pki::CRL_FILE)
                .display(),
            config.tls.reload_interval_secs.max(1)
        );
    }
}

/// Paths written for a new device.
#[derive(Debug, Serialize)]
pub(super) struct BundleFiles {
    pub dir: PathBuf,
    pub certificate: PathBuf,
    pub key: Option<PathBuf>,
    pub ca: PathBuf,
    pub connect: PathBuf,
}

/// Writes NAME.pem (leaf + issuing CA), NAME.key (0600, when generated),
/// ca.pem and connect.txt into `dir`.
pub(super) fn write_bundle(
    config: &Config,
    dir: &Path,
    added: &DeviceAdded,
) -> anyhow::Result<BundleFiles> {
    let name = &added.thing.name;
    let paths = added
        .certificate
        .to_issued_cert()
        .write_bundle(dir, name)
        .with_context(|| format!("writing the bundle into {}", dir.display()))?;
    let connect = dir.join("connect.txt");
    std::fs::write(&connect, connect_text(config, name, &paths))
        .with_context(|| format!("writing {}", connect.display()))?;
    Ok(BundleFiles {
        dir: dir.to_path_buf(),
        certificate: paths.cert,
        key: paths.key,
        ca: paths.ca,
        connect,
    })
}

/// A mosquitto_pub command that works with this bundle.
fn connect_text(config: &Config, name: &str, paths: &civitas_pki::BundlePaths) -> String {
    let port = config
        .broker
        .listeners
        .iter()
        .find(|l| {
            l.auth == civitas_broker::AuthMode::Mtls
                && l.transport == civitas_broker::Transport::Mqtt
                && l.bind.port() != 0
        })
        .map_or(8883, |l| l.bind.port());
    let key = paths.key.as_ref().map_or_else(
        || format!("{name}.key (the key you made the CSR with)"),
        |k| k.display().to_string(),
    );
    format!(
        "# Publish a reading as {name} over mutual TLS (client id = thing name):\n\
         mosquitto_pub -h localhost -p {port} -V mqttv5 \\\n  \
         --cafile {ca} --cert {cert} --key {key} \\\n  \
         -i {name} -q 1 -t city/centre/things/{name}/telemetry -m '{{\"power_w\":42}}'\n",
        ca = paths.ca.display(),
        cert = paths.cert.display(),
    )
}

#[derive(Serialize)]
struct AddedJson<'a> {
    thing: &'a civitas_registry::Thing,
    serial: &'a str,
    not_after_ms: u64,
    policy: Option<&'a str>,
    bundle: &'a BundleFiles,
}

fn report_added(added: &DeviceAdded, files: &BundleFiles, json: bool) -> anyhow::Result<()> {
    if json {
        // The private key is in the bundle, never on stdout.
        return print_json(&AddedJson {
            thing: &added.thing,
            serial: &added.certificate.serial,
            not_after_ms: added.certificate.not_after_ms,
            policy: added.policy.as_deref(),
            bundle: files,
        });
    }
    let name = &added.thing.name;
    println!("Added {name}.");
    print_fields(&[
        ("certificate", added.certificate.serial.clone()),
        ("valid until", time(added.certificate.not_after_ms)),
        ("policy", or_dash(added.policy.as_deref())),
        ("bundle", files.dir.display().to_string()),
    ]);
    println!("\nConnect with the example in {}.", files.connect.display());
    Ok(())
}
