//! Device signatures at ingest: what a message claims (the MQTT 5 user
//! property `civitas-signature`), the device keys it is checked against,
//! and the check the `store` action makes before a reading is kept.
//!
//! A signed message whose signature verifies against the sending
//! device's certificate key is stored verified; one that does not is
//! refused, counted (`telemetry_signature_failures_total`) and reported
//! to the [`DeviceKeys`] hook, so that it never passes for genuine data.
//! An unsigned message is stored unverified, as before signatures.

use std::sync::Arc;

use civitas_telemetry::signature::{
    DevicePublicKey, open_envelope, signature_property, verify_detached,
};
use civitas_telemetry::{SignatureError, VerifiedSignature};

use crate::actions::ActionSpec;
use crate::document::ValidRule;
use crate::message::{Failure, RuleMessage};
use crate::runtime::ActionDeps;
use crate::sink::TelemetryRecord;

/// The monitor counter of refused signatures (labels `rule`, `reason`).
pub const SIGNATURE_FAILURES_METRIC: &str = "telemetry_signature_failures_total";

/// The public keys devices sign with: their certificates' keys.
pub trait DeviceKeys: Send + Sync + std::fmt::Debug + 'static {
    /// The keys of the certificates `client_id` may connect with (more
    /// than one while a certificate is being rotated); none when there is
    /// no such device or it has no usable certificate.
    fn public_keys(&self, client_id: &str) -> Vec<DevicePublicKey>;

    /// Told of every refused signature, to record it as a security event.
    fn signature_refused(&self, _refusal: &SignatureRefusal) {}
}

/// A message whose signature was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureRefusal {
    pub rule: String,
    /// The publishing client; `None` for a message civitas published.
    pub client_id: Option<String>,
    pub topic: String,
    /// The thing the reading was for.
    pub thing: String,
    /// Short and stable, for the counter's `reason` label.
    pub reason: &'static str,
    /// Precisely why.
    pub error: String,
}

/// The signature a message carries, as found when it arrived.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DeviceSignature {
    #[default]
    Unsigned,
    /// A compact detached JWS over the payload.
    Jws(String),
    /// The message's signature cannot even be read (two of them, say).
    Unreadable(SignatureError),
}

impl DeviceSignature {
    /// The signature among a PUBLISH's user properties.
    pub fn from_user_properties(properties: &[(String, String)]) -> DeviceSignature {
        match signature_property(properties) {
            Ok(None) => DeviceSignature::Unsigned,
            Ok(Some(jws)) => DeviceSignature::Jws(jws.to_owned()),
            Err(e) => DeviceSignature::Unreadable(e),
        }
    }
}

/// Why a store was refused, before it is reported.
struct Refused {
    reason: &'static str,
    error: String,
}

fn reason(e: &SignatureError) -> &'static str {
    match e {
        SignatureError::Invalid => "invalid",
        SignatureError::Ambiguous(_) => "ambiguous",
        SignatureError::UnsupportedAlgorithm(_) => "algorithm",
        SignatureError::BadHeader(_) => "header",
        SignatureError::BadPublicKey(_) => "key",
        _ => "malformed",
    }
}

/// Checks the signature of `message` (if any) for `record`: verified, the
/// record carries it, and the raw message it keeps is the signed payload
/// (so the reading can be verified again later); unsigned, the record is
/// unchanged; refused, the error the action fails with, after counting
/// and reporting the refusal.
pub(crate) fn check(
    deps: &ActionDeps,
    rule: &str,
    message: &RuleMessage,
    mut record: TelemetryRecord,
) -> Result<TelemetryRecord, String> {
    match verify(deps.device_keys.as_ref(), message) {
        Ok(None) => Ok(record),
        Ok(Some(signature)) => {
            if record.raw.is_some() {
                record.raw = Some(message.payload.clone());
            }
            record.signature = Some(signature);
            Ok(record)
        }
        Err(refused) => Err(refuse(deps, rule, message, &record.thing, refused)),
    }
}

/// Counts and reports a refusal; the error the action fails with.
fn refuse(
    deps: &ActionDeps,
    rule: &str,
    message: &RuleMessage,
    thing: &str,
    refused: Refused,
) -> String {
    deps.monitor
        .counter(
            SIGNATURE_FAILURES_METRIC,
            &[("rule", rule), ("reason", refused.reason)],
        )
        .inc();
    let refusal = SignatureRefusal {
        rule: rule.to_owned(),
        client_id: message.client_id.clone(),
        topic: message.topic.clone(),
        thing: thing.to_owned(),
        reason: refused.reason,
        error: refused.error,
    };
    tracing::warn!(rule, client_id = ?refusal.client_id, topic = %refusal.topic,
        thing = %refusal.thing, error = %refusal.error, "device signature refused; reading not stored");
    if let Some(keys) = &deps.device_keys {
        keys.signature_refused(&refusal);
    }
    format!("reading refused: {}", refusal.error)
}

/// For a rule whose `store` action takes signature envelopes: the message
/// with the envelope opened (its payload what the device signed, its
/// signature the envelope's); `Ok(None)` for other rules. A message that
/// is not an envelope is refused like a bad signature, as the `store`
/// action's failure.
pub(crate) fn open_if_enveloped(
    deps: &ActionDeps,
    rule: &ValidRule,
    message: &RuleMessage,
) -> Result<Option<RuleMessage>, Failure> {
    let Some(store) = rule.actions.iter().find_map(|a| match a {
        ActionSpec::Store(s) if s.signed_envelope() => Some(s),
        _ => None,
    }) else {
        return Ok(None);
    };
    let envelope = match open_envelope(&message.payload) {
        Ok(envelope) => envelope,
        Err(e) => {
            let thing = store.thing_name.source().to_owned();
            let refused = Refused {
                reason: "envelope",
                error: e.to_string(),
            };
            return Err(Failure {
                failed_action: "StoreAction".into(),
                error_message: refuse(deps, &rule.name, message, &thing, refused),
                failed_resource: thing,
            });
        }
    };
    let signature = match message.signature {
        // Signed twice over (envelope and property): a verifier must not
        // choose.
        DeviceSignature::Unsigned => DeviceSignature::Jws(envelope.signature),
        _ => DeviceSignature::Unreadable(SignatureError::Ambiguous(2)),
    };
    Ok(Some(RuleMessage {
        payload: envelope.payload.into(),
        signature,
        ..message.clone()
    }))
}

fn verify(
    keys: Option<&Arc<dyn DeviceKeys>>,
    message: &RuleMessage,
) -> Result<Option<VerifiedSignature>, Refused> {
    let jws = match &message.signature {
        DeviceSignature::Unsigned => return Ok(None),
        DeviceSignature::Jws(jws) => jws,
        DeviceSignature::Unreadable(e) => {
            return Err(Refused {
                reason: reason(e),
                error: e.to_string(),
            });
        }
    };
    let no_key = |error: String| Refused {
        reason: "no_key",
        error,
    };
    let Some(client_id) = message.client_id.as_deref() else {
        return Err(no_key(
            "the message is signed but has no publishing device to verify it against".into(),
        ));
    };
    let Some(keys) = keys else {
        return Err(no_key(format!(
            "the message from {client_id:?} is signed and no device keys are configured to verify it"
        )));
    };
    let keys = keys.public_keys(client_id);
    if keys.is_empty() {
        return Err(no_key(format!(
            "the message from {client_id:?} is signed and the registry has no active certificate key for it"
        )));
    }
    // Any of the device's certificates may have signed; a malformed
    // signature fails the same way against each, so the last error says
    // precisely why.
    let mut last = SignatureError::Invalid;
    for key in &keys {
        match verify_detached(&message.payload, jws, key) {
            Ok(verified) => return Ok(Some(verified)),
            Err(e) => last = e,
        }
    }
    Err(Refused {
        reason: reason(&last),
        error: format!("signature of {client_id:?}: {last}"),
    })
}
