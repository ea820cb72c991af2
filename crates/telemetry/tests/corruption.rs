//! Altered, truncated or moved blocks are detected, reported with their
//! location, and never returned as data; other blocks still are.

mod common;

use std::ops::Range;
use std::path::Path;

use civitas_telemetry::{AggregateQuery, BlockLocation, Bucketing, Query, Unreadable};
use common::*;
use redb::{Database, ReadableTable, TableDefinition, WriteTransaction};

type BlockKey = (&'static str, u64, u32);
const BLOCKS: TableDefinition<BlockKey, &[u8]> = TableDefinition::new("telemetry_blocks");
const CHUNKS: TableDefinition<(&str, u64, u32, u32), &[u8]> =
    TableDefinition::new("telemetry_chunks");

/// Where the parts of a sealed block's container are (the store's
/// encoding: version byte, then little-endian u32 lengths).
struct Layout {
    header: Range<usize>,
    chunks: Vec<(u32, Range<usize>)>,
    footer: Range<usize>,
}

fn layout(c: &[u8]) -> Layout {
    let mut pos = 1;
    let u32_at = |pos: &mut usize| {
        let v = u32::from_le_bytes(c[*pos..*pos + 4].try_into().unwrap()) as usize;
        *pos += 4;
        v
    };
    let n = u32_at(&mut pos);
    let header = pos..pos + n;
    pos += n;
    let count = u32_at(&mut pos);
    let mut chunks = Vec::new();
    for _ in 0..count {
        let seq = u32_at(&mut pos) as u32;
        let n = u32_at(&mut pos);
        chunks.push((seq, pos..pos + n));
        pos += n;
    }
    let n = u32_at(&mut pos);
    Layout {
        header,
        chunks,
        footer: pos..pos + n,
    }
}

fn container(header: &[u8], chunks: &[(u32, &[u8])], footer: &[u8]) -> Vec<u8> {
    let mut out = vec![1];
    let bytes = |out: &mut Vec<u8>, b: &[u8]| {
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(b);
    };
    bytes(&mut out, header);
    out.extend_from_slice(&(chunks.len() as u32).to_le_bytes());
    for (seq, c) in chunks {
        out.extend_from_slice(&seq.to_le_bytes());
        bytes(&mut out, c);
    }
    bytes(&mut out, footer);
    out
}

/// Device `lamp`: hour 0 in three chunks, hour 1 in one; `other`: hour 0.
/// All sealed, store closed.
async fn sealed(dir: &Path) {
    let f = Fixture::open(dir, hourly()).await;
    for part in 0..3 {
        f.telemetry
            .append(series("lamp", "m", T0 + part * 10_000, 10))
            .await
            .unwrap();
    }
    f.telemetry
        .append(series("lamp", "m", T0 + HOUR, 10))
        .await
        .unwrap();
    f.telemetry
        .append(series("other", "m", T0, 10))
        .await
        .unwrap();
    f.telemetry.flush().await.unwrap();
    f.close();
}

fn edit(dir: &Path, change: impl FnOnce(&WriteTransaction)) {
    let db = Database::create(db_path(dir)).unwrap();
    let txn = db.begin_write().unwrap();
    change(&txn);
    txn.commit().unwrap();
}

fn get(txn: &WriteTransaction, key: BlockKey) -> Vec<u8> {
    let table = txn.open_table(BLOCKS).unwrap();
    table.get(key).unwrap().expect("block").value().to_vec()
}

fn put(txn: &WriteTransaction, key: BlockKey, value: &[u8]) {
    txn.open_table(BLOCKS).unwrap().insert(key, value).unwrap();
}

fn flip(txn: &WriteTransaction, key: BlockKey, at: impl FnOnce(&Layout) -> usize) {
    let mut block = get(txn, key);
    let i = at(&layout(&block));
    block[i] ^= 0x01;
    put(txn, key, &block);
}

fn location(thing: &str, period_start_ms: u64) -> BlockLocation {
    BlockLocation {
        thing: thing.into(),
        period_start_ms,
        block: 0,
    }
}

/// Queries `lamp` and returns (hours whose readings came back, problems).
async fn lamp(dir: &Path) -> (Vec<u64>, Vec<Unreadable>) {
    let f = Fixture::open(dir, hourly()).await;
    let (got, unreadable) = f.all("lamp").await;
    let mut hours: Vec<u64> = got.iter().map(|r| (r.timestamp_ms - T0) / HOUR).collect();
    hours.dedup();
    (hours, unreadable)
}

fn reason(u: &Unreadable) -> (&BlockLocation, Option<u32>, &str) {
    match u {
        Unreadable::Corrupt {
            location,
            chunk,
            reason,
        } => (location, *chunk, reason),
        other => panic!("not a corruption: {other:?}"),
    }
}

#[tokio::test]
async fn a_flipped_bit_in_a_chunk_is_reported_with_its_location() {
    let dir = temp_dir();
    sealed(dir.path()).await;
    edit(dir.path(), |txn| {
        flip(txn, ("lamp", T0, 0), |l| l.chunks[1].1.end - 1)
    });
    let (hours, unreadable) = lamp(dir.path()).await;
    // The whole block is withheld, not just the bad chunk.
    assert_eq!(hours, [1]);
    assert_eq!(unreadable.len(), 1);
    let (loc, chunk, why) = reason(&unreadable[0]);
    assert_eq!((loc, chunk), (&location("lamp", T0), Some(1)));
    assert!(why.contains("does not authenticate"), "{why}");
    let shown = unreadable[0].to_string();
    assert!(
        shown.contains("\"lamp\"") && shown.contains("chunk 1"),
        "{shown}"
    );

    // Aggregations report it the same way; other devices are unaffected.
    let f = Fixture::open(dir.path(), hourly()).await;
    let a = f
        .telemetry
        .aggregate(AggregateQuery {
            thing: "lamp".into(),
            metric: "m".into(),
            from_ms: T0,
            to_ms: T0 + 2 * HOUR,
            bucketing: Bucketing::AtMost(2),
        })
        .await
        .unwrap();
    assert_eq!(
        a.buckets.iter().map(|b| b.count).collect::<Vec<_>>(),
        [0, 10]
    );
    assert_eq!(a.unreadable, unreadable);
    let all = f.telemetry.query(Query::all_things()).await.unwrap();
    assert_eq!(all.readings.len(), 20);
}

#[tokio::test]
async fn altered_header_footer_or_container_is_detected() {
    type Edit = fn(&WriteTransaction);
    let cases: [(Edit, &str); 4] = [
        // Last byte of the wrapped data key (its tag).
        (
            |txn| flip(txn, ("lamp", T0, 0), |l| l.header.end - 1),
            "data key does not authenticate",
        ),
        (
            |txn| flip(txn, ("lamp", T0, 0), |l| l.footer.end - 1),
            "footer does not authenticate",
        ),
        // A chunk removed, footer kept.
        (
            |txn| {
                let b = get(txn, ("lamp", T0, 0));
                let l = layout(&b);
                let chunks: Vec<(u32, &[u8])> = l
                    .chunks
                    .iter()
                    .filter(|(seq, _)| *seq != 1)
                    .map(|(seq, r)| (*seq, &b[r.clone()]))
                    .collect();
                let short = container(&b[l.header.clone()], &chunks, &b[l.footer.clone()]);
                put(txn, ("lamp", T0, 0), &short);
            },
            "chunks differ from the footer",
        ),
        (
            |txn| {
                let mut b = get(txn, ("lamp", T0, 0));
                b.truncate(b.len() - 3);
                put(txn, ("lamp", T0, 0), &b);
            },
            "does not decode",
        ),
    ];
    for (change, expected) in cases {
        let dir = temp_dir();
        sealed(dir.path()).await;
        edit(dir.path(), change);
        let (hours, unreadable) = lamp(dir.path()).await;
        assert_eq!(hours, [1], "{expected}");
        let (loc, chunk, why) = reason(&unreadable[0]);
        assert_eq!((loc, chunk), (&location("lamp", T0), None));
        assert!(why.contains(expected), "{why} / {expected}");
    }
}

#[tokio::test]
async fn a_block_moved_to_another_period_or_device_fails_its_context() {
    let dir = temp_dir();
    sealed(dir.path()).await;
    edit(dir.path(), |txn| {
        let b = get(txn, ("lamp", T0, 0));
        txn.open_table(BLOCKS)
            .unwrap()
            .remove(("lamp", T0, 0))
            .unwrap();
        put(txn, ("lamp", T0 + 5 * HOUR, 0), &b);
        let other = get(txn, ("other", T0, 0));
        put(txn, ("lamp", T0 + 6 * HOUR, 0), &other);
    });
    let (hours, unreadable) = lamp(dir.path()).await;
    assert_eq!(hours, [1]);
    assert_eq!(unreadable.len(), 2);
    let (loc, _, why) = reason(&unreadable[0]);
    assert_eq!(loc, &location("lamp", T0 + 5 * HOUR));
    assert!(why.contains("moved to another thing or period"), "{why}");
    let (loc, _, why) = reason(&unreadable[1]);
    assert_eq!(loc, &location("lamp", T0 + 6 * HOUR));
    assert!(why.contains("wrapped under device/other"), "{why}");
}

#[tokio::test]
async fn an_altered_chunk_of_an_unsealed_block_is_detected() {
    let dir = temp_dir();
    let f = Fixture::open(dir.path(), hourly()).await;
    f.telemetry
        .append(series("lamp", "m", T0, 10))
        .await
        .unwrap();
    f.close();
    edit(dir.path(), |txn| {
        let mut t = txn.open_table(CHUNKS).unwrap();
        let mut c = t.get(("lamp", T0, 0, 0)).unwrap().unwrap().value().to_vec();
        let mid = c.len() / 2;
        c[mid] ^= 0x80;
        t.insert(("lamp", T0, 0, 0), c.as_slice()).unwrap();
    });
    let (hours, unreadable) = lamp(dir.path()).await;
    assert!(hours.is_empty());
    let (loc, chunk, _) = reason(&unreadable[0]);
    assert_eq!((loc, chunk), (&location("lamp", T0), Some(0)));
}
