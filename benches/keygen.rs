//! Codes per second of each generator: `cargo bench --bench keygen`.
//! The pool allocates inside a transaction on a SQLite file, rolled back after each batch so
//! the pool never drains.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nexkey::keygen::{
    GeneratorRegistry, GeneratorSettings, HmacSettings, KeyPair, KeyRequest, PoolSettings,
    RandomSettings, SignedSettings,
};
use sea_orm::TransactionTrait;

fn request(index: u32) -> KeyRequest<'static> {
    KeyRequest {
        product: "ACME-PRO",
        customer: "ada@example.com",
        fulfillment: "NXF-BENCH",
        call: "new:NXF-BENCH:",
        index,
        attempt: 0,
        end_date: chrono::NaiveDate::from_ymd_opt(2027, 11, 22),
    }
}

fn in_memory(c: &mut Criterion) {
    let pair = KeyPair::generate();
    let generators = [
        (
            "random",
            GeneratorSettings::Random(RandomSettings::default()),
        ),
        (
            "random+check",
            GeneratorSettings::Random(RandomSettings {
                check: true,
                ..Default::default()
            }),
        ),
        (
            "hmac",
            GeneratorSettings::Hmac(HmacSettings {
                secret: "a-benchmark-secret-of-some-length".to_string().into(),
                prefix: String::new(),
            }),
        ),
        (
            "signed",
            GeneratorSettings::Signed(SignedSettings {
                private_key: pair.private_key,
                encoding: Default::default(),
                prefix: String::new(),
                file_name: None,
            }),
        ),
    ];
    let mut group = c.benchmark_group("keygen");
    group.throughput(Throughput::Elements(1));
    for (name, settings) in generators {
        let generator = GeneratorRegistry::new().build(&settings).unwrap();
        let mut index = 0u32;
        group.bench_function(name, |b| {
            b.iter(|| {
                index = index.wrapping_add(1);
                generator.generate(&request(index)).unwrap()
            })
        });
    }
    group.finish();
}

fn pool(c: &mut Criterion) {
    const BATCH: u64 = 1000;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let db = runtime.block_on(async {
        let db = nexkey::store::connect(&url).await.unwrap();
        nexkey::store::migrate(&db).await.unwrap();
        let codes: Vec<String> = (0..BATCH).map(|i| format!("POOL-{i:08}")).collect();
        nexkey::store::pool::import(&db, "ACME-PRO", &codes)
            .await
            .unwrap();
        db
    });
    let generator = GeneratorRegistry::new()
        .build(&GeneratorSettings::Pool(PoolSettings { low_stock: 0 }))
        .unwrap();
    let mut group = c.benchmark_group("keygen");
    group.throughput(Throughput::Elements(1));
    group.bench_function("pool (sqlite)", |b| {
        b.to_async(&runtime).iter_custom(|iterations| {
            let (db, generator) = (db.clone(), generator.clone());
            async move {
                let mut elapsed = Duration::ZERO;
                let mut left = iterations;
                while left > 0 {
                    let batch = left.min(BATCH);
                    let txn = db.begin().await.unwrap();
                    let start = Instant::now();
                    for index in 0..batch {
                        let request = request(index as u32);
                        generator.generate_in(&txn, &request).await.unwrap();
                    }
                    elapsed += start.elapsed();
                    txn.rollback().await.unwrap();
                    left -= batch;
                }
                elapsed
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = in_memory, pool
}
criterion_main!(benches);
