//! Sealing and opening blocks.
//!
//! A block has one data key from `generate_data_key(device/{thing},
//! {thing, stream: telemetry, period})`, stored wrapped in its header. Each
//! chunk — the readings of one metric from one append — is a record sealed
//! under that key with associated data naming thing, period, period length,
//! block, chunk number and metric, so a chunk moved anywhere else fails to
//! open. Sealing adds a footer, sealed the same way, that fixes the set of
//! chunk numbers, so a removed or added chunk shows too. Opening checks the
//! whole block before any reading leaves it: a block is returned entirely
//! or reported, never in part.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use civitas_kms::{EncryptionContext, KmsError, RecordCipher};
use civitas_store::{TelemetryBlock, TelemetryBlockKey};
use zeroize::Zeroizing;

use crate::error::TelemetryError;
use crate::format::{
    self, Mode, Place, chunk_aad, chunk_prefix, decode_header, encode_header, footer_aad,
    footer_plaintext, split_chunk,
};
use crate::keys::{TelemetryKeys, device_key_id};
use crate::reading::NewReading;

/// The encryption context of a block's data key.
pub(crate) fn data_key_context(thing: &str, period_start_ms: u64) -> EncryptionContext {
    EncryptionContext::from([
        ("thing", thing.to_owned()),
        ("stream", "telemetry".to_owned()),
        ("period", period_start_ms.to_string()),
    ])
}

/// The block readings are being added to, held in memory.
pub(crate) struct BlockWriter {
    pub(crate) key: TelemetryBlockKey,
    period_ms: u64,
    cipher: Option<RecordCipher>,
    pub(crate) header: Vec<u8>,
    /// Set once a commit holding the header has succeeded; until then every
    /// append to the block sends the header again.
    pub(crate) header_durable: Arc<AtomicBool>,
    pub(crate) next_seq: u32,
    pub(crate) readings: u64,
    pub(crate) bytes: u64,
}

impl BlockWriter {
    pub(crate) fn create(
        keys: &dyn TelemetryKeys,
        mode: Mode,
        key: TelemetryBlockKey,
        period_ms: u64,
    ) -> Result<BlockWriter, TelemetryError> {
        let (cipher, wrapped) = match mode {
            Mode::Sealed => {
                let key_id = device_key_id(&key.thing)?;
                let ctx = data_key_context(&key.thing, key.period_start_ms);
                let data_key = keys
                    .generate_data_key(&key_id, &ctx)
                    .map_err(|e| kms_error(&key.thing, e))?;
                (Some(data_key.record_cipher()?), data_key.wrapped)
            }
            Mode::Unsealed => (None, Vec::new()),
        };
        Ok(BlockWriter {
            header: encode_header(mode, period_ms, &wrapped),
            key,
            period_ms,
            cipher,
            header_durable: Arc::new(AtomicBool::new(false)),
            next_seq: 0,
            readings: 0,
            bytes: 0,
        })
    }

    fn place(&self) -> Place<'_> {
        Place {
            thing: &self.key.thing,
            period_start_ms: self.key.period_start_ms,
            period_ms: self.period_ms,
            block: self.key.block,
        }
    }

    /// Seals `readings` (all of `metric`) as the next chunk; returns its
    /// number and stored bytes.
    pub(crate) fn seal_chunk(
        &mut self,
        metric: &str,
        readings: &[&NewReading],
    ) -> Result<(u32, Vec<u8>), TelemetryError> {
        let seq = self.next_seq;
        let mut plain = Zeroizing::new(Vec::with_capacity(
            4 + readings
                .iter()
                .map(|r| format::encoded_len(r))
                .sum::<usize>(),
        ));
        format::encode_readings(readings, &mut plain);
        let bytes = match &self.cipher {
            Some(cipher) => {
                let sealed = cipher.seal(&plain, &chunk_aad(&self.place(), seq, metric))?;
                let mut out = chunk_prefix(metric, sealed.len());
                out.extend_from_slice(&sealed);
                out
            }
            None => {
                let mut out = chunk_prefix(metric, plain.len());
                out.extend_from_slice(&plain);
                out
            }
        };
        self.next_seq += 1;
        self.readings += readings.len() as u64;
        self.bytes += bytes.len() as u64;
        Ok((seq, bytes))
    }

    /// The footer for chunks `0..next_seq`.
    pub(crate) fn footer(&self) -> Result<Vec<u8>, TelemetryError> {
        let plain = footer_plaintext(0..self.next_seq);
        match &self.cipher {
            Some(cipher) => Ok(cipher.seal(&plain, &footer_aad(&self.place()))?),
            None => Ok(plain),
        }
    }
}

/// Why a block could not be opened.
#[derive(Debug)]
pub(crate) enum BlockFailure {
    KeyDestroyed,
    KeyUnavailable(String),
    Corrupt { chunk: Option<u32>, reason: String },
}

fn corrupt(chunk: Option<u32>, reason: impl Into<String>) -> BlockFailure {
    BlockFailure::Corrupt {
        chunk,
        reason: reason.into(),
    }
}

/// The cipher of a stored block, after checking its header; `None` for an
/// unsealed (baseline) block in a baseline store.
fn block_cipher(
    keys: &dyn TelemetryKeys,
    mode: Mode,
    key: &TelemetryBlockKey,
    header: &[u8],
) -> Result<(Option<RecordCipher>, u64), BlockFailure> {
    let header = decode_header(header).map_err(|r| corrupt(None, format!("header: {r}")))?;
    if header.mode != mode {
        return Err(corrupt(
            None,
            match header.mode {
                Mode::Unsealed => "block is not sealed",
                Mode::Sealed => "sealed block in an unsealed baseline store",
            },
        ));
    }
    if mode == Mode::Unsealed {
        return Ok((None, header.period_ms));
    }
    let ctx = data_key_context(&key.thing, key.period_start_ms);
    let data_key = keys
        .decrypt_data_key(header.wrapped_key, &ctx)
        .map_err(|e| match e {
            KmsError::KeyDestroyed(_) => BlockFailure::KeyDestroyed,
            KmsError::AuthenticationFailed => corrupt(
                None,
                "data key does not authenticate: header altered or block moved \
                 to another thing or period",
            ),
            e @ (KmsError::BadMagic { .. }
            | KmsError::UnsupportedFormatVersion(_)
            | KmsError::Truncated { .. }
            | KmsError::TrailingBytes { .. }
            | KmsError::Malformed { .. }) => corrupt(None, format!("wrapped data key: {e}")),
            e => BlockFailure::KeyUnavailable(e.to_string()),
        })?;
    let cipher = data_key
        .record_cipher()
        .map_err(|e| BlockFailure::KeyUnavailable(e.to_string()))?;
    Ok((Some(cipher), header.period_ms))
}

/// A block whose every part has been authenticated.
pub(crate) struct OpenedBlock {
    pub(crate) chunks: Vec<OpenedChunk>,
}

pub(crate) struct OpenedChunk {
    pub(crate) metric: String,
    pub(crate) plain: Zeroizing<Vec<u8>>,
}

/// Opens and checks a stored block; only chunks of `metric` (all when
/// `None`) are decrypted, but the footer always is.
pub(crate) fn open_block(
    keys: &dyn TelemetryKeys,
    mode: Mode,
    key: &TelemetryBlockKey,
    block: &TelemetryBlock,
    metric: Option<&str>,
) -> Result<OpenedBlock, BlockFailure> {
    let wrapping_key = device_key_id(&key.thing).map_err(|e| corrupt(None, e.to_string()))?;
    check_wrapping_key(&block.header, &wrapping_key)?;
    let (cipher, period_ms) = block_cipher(keys, mode, key, &block.header)?;
    let place = Place {
        thing: &key.thing,
        period_start_ms: key.period_start_ms,
        period_ms,
        block: key.block,
    };
    if let Some(footer) = &block.footer {
        let plain = match &cipher {
            Some(c) => c
                .open(footer, &footer_aad(&place))
                .map_err(|_| corrupt(None, "footer does not authenticate"))?,
            None => Zeroizing::new(footer.clone()),
        };
        if plain[..] != footer_plaintext(block.chunks.iter().map(|c| c.seq))[..] {
            return Err(corrupt(
                None,
                "chunks differ from the footer's list (a chunk was removed or added)",
            ));
        }
    }
    let mut chunks = Vec::with_capacity(block.chunks.len());
    for chunk in &block.chunks {
        let seq = Some(chunk.seq);
        let (chunk_metric, body) = split_chunk(&chunk.bytes).map_err(|r| corrupt(seq, r))?;
        if metric.is_some_and(|m| m != chunk_metric) {
            continue;
        }
        let plain = match &cipher {
            Some(c) => c
                .open(body, &chunk_aad(&place, chunk.seq, chunk_metric))
                .map_err(|_| corrupt(seq, "chunk does not authenticate"))?,
            None => Zeroizing::new(body.to_vec()),
        };
        format::decode_readings(&plain).map_err(|r| corrupt(seq, r))?;
        chunks.push(OpenedChunk {
            metric: chunk_metric.to_owned(),
            plain,
        });
    }
    Ok(OpenedBlock { chunks })
}

/// Refuses a header whose data key names another master key before asking
/// the KMS, so a block re-wrapped under some other device's key cannot be
/// passed off as this device's.
fn check_wrapping_key(header: &[u8], expected: &civitas_kms::KeyId) -> Result<(), BlockFailure> {
    let Ok(h) = decode_header(header) else {
        return Ok(()); // block_cipher reports it with its reason.
    };
    if h.mode != Mode::Sealed {
        return Ok(());
    }
    match civitas_kms::inspect(h.wrapped_key) {
        Ok(info) if info.kind != civitas_kms::SealedKind::DataKey => {
            Err(corrupt(None, "header holds a sealed blob, not a data key"))
        }
        // Wrapped under another device's key, it would survive this
        // device's shredding.
        Ok(info) if &info.key_id == expected => Ok(()),
        Ok(info) => Err(corrupt(
            None,
            format!("data key is wrapped under {}, not {expected}", info.key_id),
        )),
        Err(e) => Err(corrupt(None, format!("wrapped data key: {e}"))),
    }
}

/// The footer that seals a block found unsealed at start, for the chunks
/// it holds (numbered `seqs`).
pub(crate) fn recovery_footer(
    keys: &dyn TelemetryKeys,
    mode: Mode,
    key: &TelemetryBlockKey,
    header: &[u8],
    seqs: &[u32],
) -> Result<Vec<u8>, BlockFailure> {
    let (cipher, period_ms) = block_cipher(keys, mode, key, header)?;
    let plain = footer_plaintext(seqs.iter().copied());
    let place = Place {
        thing: &key.thing,
        period_start_ms: key.period_start_ms,
        period_ms,
        block: key.block,
    };
    match cipher {
        Some(c) => c
            .seal(&plain, &footer_aad(&place))
            .map_err(|e| BlockFailure::KeyUnavailable(e.to_string())),
        None => Ok(plain),
    }
}

/// Maps a KMS refusal while writing for `thing`.
pub(crate) fn kms_error(thing: &str, e: KmsError) -> TelemetryError {
    match e {
        KmsError::KeyDestroyed(_) => TelemetryError::KeyDestroyed {
            thing: thing.to_owned(),
        },
        e => TelemetryError::Kms(e),
    }
}
