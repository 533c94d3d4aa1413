//! What authentication adds to a request (issue 6 target: under 20 µs): verifying an access
//! token (HS256 and EdDSA) and resolving the principal from the in-memory directory, then the
//! route's scope check; and resolving an API key (SHA-256 and a map lookup). The directory
//! remembers verified tokens, so the "bearer" figures are a token's second and later requests;
//! "verify alone" is its first. Run with
//! `cargo bench -p switchboard-server --bench auth`; figures in docs/benchmarks.md.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

use switchboard_core::{Role, Scope};
use switchboard_server::auth::directory::Directory;
use switchboard_server::auth::tokens::{SigningKey, TokenKeys};
use switchboard_store::{Actor, NewApiKey, NewUser, Store};

/// An Ed25519 key pair made for this benchmark only (`openssl genpkey -algorithm ed25519`).
const ED_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIK1SdoH4VFI2Jfomcxh0XzuGcurMD2x1Xa7fmNlkEr2q
-----END PRIVATE KEY-----
";
const ED_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAuk3VHbc2aMEqToBNezgRmYOcKbYoupw/SCkYcrAcNOQ=
-----END PUBLIC KEY-----
";

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (directory, token, key) = rt.block_on(async {
        let store = Store::connect(&switchboard_store::sqlite_url(dir.path()))
            .await
            .unwrap();
        let t = store
            .create_tenant(
                &switchboard_store::NewTenant::new("t", "T"),
                &Actor::system("bench"),
                0,
            )
            .await
            .unwrap();
        let u = store
            .create_user(
                t.id,
                &NewUser {
                    email: "a@b.test".into(),
                    display_name: "A".into(),
                    role: Role::TenantAdmin,
                    password_hash: "x".into(),
                },
                &Actor::system("bench"),
                0,
            )
            .await
            .unwrap();
        let key = "sb_bench_0123456789abcdef0123456789abcdef".to_owned();
        store
            .create_api_key(
                t.id,
                &NewApiKey {
                    name: "k".into(),
                    key: key.clone(),
                    scopes: switchboard_core::ScopeSet::TENANT,
                    expires_at: None,
                    rate_limit: None,
                },
                &Actor::system("bench"),
                0,
            )
            .await
            .unwrap();
        let d = Directory::load(store).await.unwrap();
        (d, (u.id, t.id.0), key)
    });
    let hs = TokenKeys::new(
        SigningKey::Hs256 {
            secret: vec![7u8; 32],
        },
        None,
        0,
    )
    .unwrap();
    let now = switchboard_core::time::now_ms() / 1000;
    let (hs_token, _) = hs.issue(token.0, token.1, Role::TenantAdmin, now);

    c.bench_function("bearer HS256: verify + directory + scope check", |b| {
        b.iter(|| {
            let p = rt
                .block_on(directory.user_principal(&hs, black_box(&hs_token)))
                .unwrap();
            p.require(Scope::EventsWrite).unwrap();
        })
    });
    c.bench_function("api key: digest + directory + scope check", |b| {
        b.iter(|| {
            let p = rt
                .block_on(directory.key_principal(black_box(&key)))
                .unwrap();
            p.require(Scope::EventsWrite).unwrap();
        })
    });
    c.bench_function("HS256 verify alone", |b| {
        b.iter(|| hs.verify(black_box(&hs_token), now).unwrap())
    });
    let ed = TokenKeys::new(
        SigningKey::EdDsa {
            private_pem: ED_PRIVATE.as_bytes().to_vec(),
            public_pem: ED_PUBLIC.as_bytes().to_vec(),
        },
        None,
        0,
    )
    .unwrap();
    let (ed_token, _) = ed.issue(token.0, token.1, Role::TenantAdmin, now);
    c.bench_function("EdDSA verify alone", |b| {
        b.iter(|| ed.verify(black_box(&ed_token), now).unwrap())
    });
    c.bench_function("bearer EdDSA: verify + directory + scope check", |b| {
        b.iter(|| {
            let p = rt
                .block_on(directory.user_principal(&ed, black_box(&ed_token)))
                .unwrap();
            p.require(Scope::EventsWrite).unwrap();
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
