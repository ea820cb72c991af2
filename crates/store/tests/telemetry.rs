//! The telemetry table family: unsealed blocks, sealing, merged reads,
//! range drops and the schema step that adds it.

mod common;

use std::ops::ControlFlow;

use civitas_store::{
    BlockOrder, Op, SCHEMA_VERSION, Store, TelemetryBlock, TelemetryBlockKey, TelemetryRead,
};
use common::*;
use redb::{Database, TableDefinition};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

fn key(thing: &str, period: u64, block: u32) -> TelemetryBlockKey {
    TelemetryBlockKey {
        thing: thing.into(),
        period_start_ms: period,
        block,
    }
}

fn chunk(k: &TelemetryBlockKey, seq: u32) -> Op {
    Op::PutTelemetryChunk {
        key: k.clone(),
        seq,
        bytes: format!("{}:{}:{}:{seq}", k.thing, k.period_start_ms, k.block).into_bytes(),
    }
}

fn open_block(k: &TelemetryBlockKey) -> Op {
    Op::OpenTelemetryBlock {
        key: k.clone(),
        header: b"header".to_vec(),
    }
}

fn walk(
    read: &TelemetryRead,
    thing: &str,
    periods: std::ops::Range<u64>,
    order: BlockOrder,
) -> Vec<(TelemetryBlockKey, TelemetryBlock)> {
    let mut out = Vec::new();
    read.blocks(thing, periods, order, |k, b| {
        out.push((k, b.unwrap()));
        ControlFlow::Continue(())
    })
    .unwrap();
    out
}

async fn commit(store: &Store, ops: Vec<Op>) {
    store.commit(ops).await.unwrap();
}

#[tokio::test]
async fn blocks_are_sealed_into_one_row_and_read_merged_in_order() {
    let dir = temp_dir();
    let store = open(&dir);
    let a0 = key("lamp", 0, 0);
    let a1 = key("lamp", 0, 1);
    let b = key("lamp", 3600, 0);
    commit(
        &store,
        vec![
            open_block(&a0),
            chunk(&a0, 0),
            chunk(&a0, 1),
            open_block(&a1),
            chunk(&a1, 0),
            open_block(&b),
            chunk(&b, 0),
            // Another device, to check that walks stay within one.
            open_block(&key("lamp-2", 0, 0)),
            chunk(&key("lamp-2", 0, 0), 0),
        ],
    )
    .await;

    // A seal whose count is wrong leaves the block as it was.
    commit(
        &store,
        vec![Op::SealTelemetryBlock {
            key: a0.clone(),
            chunks: 3,
            footer: b"f".to_vec(),
        }],
    )
    .await;
    let read = store.telemetry_read().unwrap();
    assert_eq!(read.unsealed_blocks().unwrap().len(), 4);

    commit(
        &store,
        vec![Op::SealTelemetryBlock {
            key: a0.clone(),
            chunks: 2,
            footer: b"footer".to_vec(),
        }],
    )
    .await;
    let read = store.telemetry_read().unwrap();
    let blocks = walk(&read, "lamp", 0..u64::MAX, BlockOrder::Ascending);
    let keys: Vec<_> = blocks.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(keys, [a0.clone(), a1.clone(), b.clone()]);
    let (_, sealed) = &blocks[0];
    assert!(sealed.is_sealed());
    assert_eq!(sealed.header, b"header");
    assert_eq!(sealed.footer.as_deref(), Some(&b"footer"[..]));
    let seqs: Vec<u32> = sealed.chunks.iter().map(|c| c.seq).collect();
    assert_eq!(seqs, [0, 1]);
    assert_eq!(sealed.chunks[1].bytes, b"lamp:0:0:1");
    assert!(!blocks[1].1.is_sealed());
    assert_eq!(blocks[1].1.chunks.len(), 1);

    let newest: Vec<_> = walk(&read, "lamp", 0..u64::MAX, BlockOrder::Descending)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(newest, [b.clone(), a1.clone(), a0.clone()]);
    let first_period: Vec<_> = walk(&read, "lamp", 0..3600, BlockOrder::Ascending)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(first_period, [a0.clone(), a1.clone()]);

    // The walk stops when asked.
    let mut seen = 0;
    read.blocks("lamp", 0..u64::MAX, BlockOrder::Descending, |_, _| {
        seen += 1;
        ControlFlow::Break(())
    })
    .unwrap();
    assert_eq!(seen, 1);

    assert_eq!(read.things().unwrap(), ["lamp", "lamp-2"]);
    assert_eq!(read.last_block("lamp", 0).unwrap(), Some(1));
    assert_eq!(read.last_block("lamp", 7200).unwrap(), None);
    let unsealed: Vec<_> = read
        .unsealed_blocks()
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(unsealed, [a1.clone(), b.clone(), key("lamp-2", 0, 0)]);
    let mut visited = Vec::new();
    read.for_each_unsealed(|k, header, seqs| {
        assert_eq!(header, b"header");
        visited.push((k, seqs.to_vec()));
        Ok::<_, civitas_store::StoreError>(())
    })
    .unwrap();
    assert_eq!(
        visited,
        [(a1, vec![0]), (b, vec![0]), (key("lamp-2", 0, 0), vec![0])]
    );
}

#[tokio::test]
async fn dropping_expired_periods_removes_sealed_and_unsealed_rows() {
    let dir = temp_dir();
    let store = open(&dir);
    let mut ops = Vec::new();
    for period in [0, 3600, 7200] {
        let k = key("lamp", period, 0);
        ops.extend([open_block(&k), chunk(&k, 0)]);
    }
    ops.push(Op::SealTelemetryBlock {
        key: key("lamp", 0, 0),
        chunks: 1,
        footer: Vec::new(),
    });
    ops.extend([
        open_block(&key("other", 0, 0)),
        chunk(&key("other", 0, 0), 0),
    ]);
    commit(&store, ops).await;
    commit(
        &store,
        vec![Op::DropTelemetry {
            thing: "lamp".into(),
            before_period_ms: 7200,
        }],
    )
    .await;
    let read = store.telemetry_read().unwrap();
    let left: Vec<_> = walk(&read, "lamp", 0..u64::MAX, BlockOrder::Ascending)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(left, [key("lamp", 7200, 0)]);
    assert_eq!(walk(&read, "other", 0..1, BlockOrder::Ascending).len(), 1);
    assert_eq!(read.unsealed_blocks().unwrap().len(), 2);
}

#[tokio::test]
async fn period_setting_persists() {
    let dir = temp_dir();
    let store = open(&dir);
    assert_eq!(store.telemetry_read().unwrap().period_ms().unwrap(), None);
    commit(&store, vec![Op::SetTelemetryPeriod { period_ms: 60_000 }]).await;
    store.close().unwrap();
    let store = open(&dir);
    assert_eq!(
        store.telemetry_read().unwrap().period_ms().unwrap(),
        Some(60_000)
    );
}

#[tokio::test]
async fn a_schema_3_store_is_migrated_and_gains_the_telemetry_tables() {
    let dir = temp_dir();
    {
        let db = Database::create(db_path(&dir)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("schema_version", 3u32.to_le_bytes().as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let store = open(&dir);
    assert!(store.telemetry_read().unwrap().things().unwrap().is_empty());
    let k = key("t", 0, 0);
    commit(&store, vec![open_block(&k), chunk(&k, 0)]).await;
    store.close().unwrap();
    let db = Database::create(db_path(&dir)).unwrap();
    let txn = redb::ReadableDatabase::begin_read(&db).unwrap();
    let meta = txn.open_table(META).unwrap();
    assert_eq!(
        meta.get("schema_version").unwrap().unwrap().value(),
        SCHEMA_VERSION.to_le_bytes()
    );
    const { assert!(SCHEMA_VERSION >= 4) };
}
