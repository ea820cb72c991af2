//! End-to-end signatures of device messages (format in
//! `docs/telemetry-signatures.md`).
//!
//! A device signs the exact bytes of its message with the key of its
//! certificate: a detached JWS (RFC 7515) in compact form with the
//! unencoded-payload option (RFC 7797, `"b64": false`), algorithm ES256.
//! Over MQTT 5 the JWS travels in the user property `civitas-signature`;
//! over MQTT 3.1.1, which has no properties, the message is an envelope
//! `{"payload": "<base64url>", "signature": "<JWS>"}`. Verification only
//! ever produces a [`VerifiedSignature`], which is what lets a reading be
//! stored as verified. [`DeviceSigner`] is the signing half, for the device
//! SDK and tests.

use std::fmt;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    ParsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// The MQTT 5 user property that carries the signature.
pub const SIGNATURE_USER_PROPERTY: &str = "civitas-signature";
/// The protected header devices sign with.
pub const PROTECTED_HEADER: &str = r#"{"alg":"ES256","b64":false,"crit":["b64"]}"#;
/// Longest JWS accepted, in bytes.
pub const MAX_JWS_LEN: usize = 2048;
const ES256_SIGNATURE_LEN: usize = 64;

/// Why a message's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// A signature was required and the message has none.
    #[error("the message carries no signature")]
    Missing,
    /// More than one `civitas-signature` property.
    #[error("the message carries {0} signatures; exactly one is allowed")]
    Ambiguous(usize),
    /// Not a compact detached JWS.
    #[error("malformed signature: {0}")]
    Malformed(&'static str),
    /// The protected header breaks the profile.
    #[error("signature header: {0}")]
    BadHeader(String),
    /// Any algorithm but ES256.
    #[error("signature algorithm {0:?} is not accepted; devices sign with ES256")]
    UnsupportedAlgorithm(String),
    /// The certificate or key given for the device is unusable.
    #[error("device public key: {0}")]
    BadPublicKey(&'static str),
    /// The signature does not match the message and the device's key.
    #[error("signature does not verify against the message and the device's certificate key")]
    Invalid,
    /// A MQTT 3.1.1 envelope that does not parse.
    #[error("malformed signature envelope: {0}")]
    BadEnvelope(&'static str),
    /// The signing key could not be used.
    #[error("signing failed: {0}")]
    Signing(&'static str),
}

/// A device's P-256 public key, parsed once for many verifications.
#[derive(Clone)]
pub struct DevicePublicKey(ParsedPublicKey);

impl fmt::Debug for DevicePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DevicePublicKey(P-256)")
    }
}

impl DevicePublicKey {
    /// From a DER `SubjectPublicKeyInfo` (or an uncompressed SEC1 point).
    pub fn from_spki_der(der: &[u8]) -> Result<DevicePublicKey, SignatureError> {
        ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, der)
            .map(DevicePublicKey)
            .map_err(|_| SignatureError::BadPublicKey("not a P-256 public key"))
    }

    /// From the device's DER X.509 certificate: its subject public key.
    /// The certificate is trusted as given (the registry vouches for it);
    /// only the key is taken from it.
    pub fn from_certificate_der(der: &[u8]) -> Result<DevicePublicKey, SignatureError> {
        DevicePublicKey::from_spki_der(certificate_spki(der)?)
    }
}

/// A signature that verified, over a message with the recorded digest.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    jws: String,
    payload_sha256: [u8; 32],
}

impl fmt::Debug for VerifiedSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedSignature")
            .field("jws", &self.jws)
            .finish_non_exhaustive()
    }
}

impl VerifiedSignature {
    /// The compact detached JWS, as stored with the reading.
    pub fn jws(&self) -> &str {
        &self.jws
    }

    /// True if `payload` is the message that was verified.
    pub(crate) fn covers(&self, payload: &[u8]) -> bool {
        sha256(payload) == self.payload_sha256
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, bytes).as_ref());
    out
}

/// Verifies the detached JWS `jws` over `payload` with the device's key.
pub fn verify_detached(
    payload: &[u8],
    jws: &str,
    key: &DevicePublicKey,
) -> Result<VerifiedSignature, SignatureError> {
    if jws.len() > MAX_JWS_LEN {
        return Err(SignatureError::Malformed("longer than 2048 bytes"));
    }
    let mut parts = jws.split('.');
    let (Some(header_b64), Some(body), Some(sig_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SignatureError::Malformed(
            "not three dot-separated parts (compact serialization)",
        ));
    };
    if !body.is_empty() {
        return Err(SignatureError::Malformed(
            "payload part is not empty; the payload must be detached",
        ));
    }
    let header = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|_| SignatureError::Malformed("header is not unpadded base64url"))?;
    check_header(&header)?;
    let signature = URL_SAFE_NO_PAD
        .decode(sig_b64)
        .map_err(|_| SignatureError::Malformed("signature is not unpadded base64url"))?;
    if signature.len() != ES256_SIGNATURE_LEN {
        return Err(SignatureError::Malformed(
            "an ES256 signature is 64 bytes (R || S)",
        ));
    }
    let input = signing_input(header_b64, payload);
    key.0
        .verify_sig(&input, &signature)
        .map_err(|_| SignatureError::Invalid)?;
    Ok(VerifiedSignature {
        jws: jws.to_owned(),
        payload_sha256: sha256(payload),
    })
}

/// [`verify_detached`] for a message whose signature may be absent (then
/// [`SignatureError::Missing`]).
pub fn verify_message(
    payload: &[u8],
    signature: Option<&str>,
    key: &DevicePublicKey,
) -> Result<VerifiedSignature, SignatureError> {
    verify_detached(payload, signature.ok_or(SignatureError::Missing)?, key)
}

/// The signature among MQTT 5 user properties, if any; two are refused.
pub fn signature_property(
    user_properties: &[(String, String)],
) -> Result<Option<&str>, SignatureError> {
    let mut found = user_properties
        .iter()
        .filter(|(k, _)| k == SIGNATURE_USER_PROPERTY)
        .map(|(_, v)| v.as_str());
    match (found.next(), found.count()) {
        (first, 0) => Ok(first),
        (_, more) => Err(SignatureError::Ambiguous(more + 1)),
    }
}

/// RFC 7797 signing input: base64url(header) '.' payload, unencoded.
fn signing_input(header_b64: &str, payload: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(header_b64.len() + 1 + payload.len());
    input.extend_from_slice(header_b64.as_bytes());
    input.push(b'.');
    input.extend_from_slice(payload);
    input
}

fn check_header(header: &[u8]) -> Result<(), SignatureError> {
    let bad = |s: &str| SignatureError::BadHeader(s.to_owned());
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(header) else {
        return Err(bad("not a JSON object"));
    };
    match map.get("alg") {
        Some(Value::String(alg)) if alg == "ES256" => {}
        Some(Value::String(alg)) => return Err(SignatureError::UnsupportedAlgorithm(alg.clone())),
        _ => return Err(bad("\"alg\" missing or not a string")),
    }
    if map.get("b64") != Some(&Value::Bool(false)) {
        return Err(bad(
            "\"b64\" must be false: the payload is signed as sent (RFC 7797)",
        ));
    }
    let Some(Value::Array(crit)) = map.get("crit") else {
        return Err(bad("\"crit\" must list \"b64\""));
    };
    let mut has_b64 = false;
    for name in crit {
        match name {
            Value::String(n) if n == "b64" => has_b64 = true,
            Value::String(n) => {
                return Err(SignatureError::BadHeader(format!(
                    "unsupported critical parameter {n:?}"
                )));
            }
            _ => return Err(bad("\"crit\" entries must be strings")),
        }
    }
    if !has_b64 {
        return Err(bad("\"crit\" must list \"b64\""));
    }
    Ok(())
}

/// A MQTT 3.1.1 message with its signature, opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The message the device signed (and the rules engine processes).
    pub payload: Vec<u8>,
    /// The compact detached JWS over `payload`.
    pub signature: String,
}

/// Parses an envelope `{"payload": "<base64url>", "signature": "<JWS>"}`;
/// other members are refused so that nothing unsigned rides along.
pub fn open_envelope(message: &[u8]) -> Result<Envelope, SignatureError> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(message) else {
        return Err(SignatureError::BadEnvelope("not a JSON object"));
    };
    if map.len() != 2 {
        return Err(SignatureError::BadEnvelope(
            "members must be exactly \"payload\" and \"signature\"",
        ));
    }
    let (Some(Value::String(payload)), Some(Value::String(signature))) =
        (map.get("payload"), map.get("signature"))
    else {
        return Err(SignatureError::BadEnvelope(
            "\"payload\" and \"signature\" must be strings",
        ));
    };
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| SignatureError::BadEnvelope("\"payload\" is not unpadded base64url"))?;
    Ok(Envelope {
        payload,
        signature: signature.clone(),
    })
}

/// Builds an envelope for a MQTT 3.1.1 device.
pub fn seal_envelope(payload: &[u8], signature: &str) -> Vec<u8> {
    let value = serde_json::json!({
        "payload": URL_SAFE_NO_PAD.encode(payload),
        "signature": signature,
    });
    value.to_string().into_bytes()
}

/// A device's signing key (P-256), for the device SDK and tests.
pub struct DeviceSigner {
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

impl fmt::Debug for DeviceSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceSigner(<redacted>)")
    }
}

impl DeviceSigner {
    /// A new key; returns it with its PKCS#8 DER to keep.
    pub fn generate() -> Result<(DeviceSigner, Vec<u8>), SignatureError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| SignatureError::Signing("key generation failed"))?;
        let signer = DeviceSigner::from_pkcs8(pkcs8.as_ref())?;
        Ok((signer, pkcs8.as_ref().to_vec()))
    }

    /// The key from its PKCS#8 DER (what certificate tooling writes).
    pub fn from_pkcs8(der: &[u8]) -> Result<DeviceSigner, SignatureError> {
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map_err(|_| SignatureError::Signing("not a P-256 PKCS#8 key"))?;
        Ok(DeviceSigner {
            key,
            rng: SystemRandom::new(),
        })
    }

    /// The public key as DER `SubjectPublicKeyInfo` (for the certificate).
    pub fn public_key_spki_der(&self) -> Result<Vec<u8>, SignatureError> {
        self.key
            .public_key()
            .as_der()
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| SignatureError::Signing("cannot encode the public key"))
    }

    /// The compact detached JWS over `payload`.
    pub fn sign_detached(&self, payload: &[u8]) -> Result<String, SignatureError> {
        let header_b64 = URL_SAFE_NO_PAD.encode(PROTECTED_HEADER);
        let sig = self
            .key
            .sign(&self.rng, &signing_input(&header_b64, payload))
            .map_err(|_| SignatureError::Signing("signing failed"))?;
        Ok(format!(
            "{header_b64}..{}",
            URL_SAFE_NO_PAD.encode(sig.as_ref())
        ))
    }
}

/// The DER of a certificate's `subjectPublicKeyInfo`: the seventh field of
/// `tbsCertificate` counting the optional `[0]` version (RFC 5280 4.1).
fn certificate_spki(cert: &[u8]) -> Result<&[u8], SignatureError> {
    const ERR: SignatureError = SignatureError::BadPublicKey("not a DER X.509 certificate");
    let (certificate, _) = der_expect(cert, 0x30).ok_or(ERR)?;
    let (tbs, _) = der_expect(certificate, 0x30).ok_or(ERR)?;
    let mut rest = tbs;
    if rest.first() == Some(&0xa0) {
        rest = der_next(rest).ok_or(ERR)?.2;
    }
    // serialNumber, signature, issuer, validity, subject.
    for tag in [0x02, 0x30, 0x30, 0x30, 0x30] {
        rest = der_expect(rest, tag).ok_or(ERR)?.1;
    }
    let (tag, _, after) = der_next(rest).ok_or(ERR)?;
    if tag != 0x30 {
        return Err(ERR);
    }
    Ok(&rest[..rest.len() - after.len()])
}

/// The content of a TLV with `tag`, and what follows it.
fn der_expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    match der_next(input)? {
        (t, content, rest) if t == tag => Some((content, rest)),
        _ => None,
    }
}

/// One DER TLV with a single-byte tag: (tag, content, rest).
fn der_next(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | usize::from(b);
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}
