//! Hostile tokens: over a million mutated session tokens through every decode path (the
//! cookie store's sealed values and server-store ids, carried in a cookie and in a
//! header). Every one must give a fresh session with a new id; none may panic or fail the
//! request.
//!
//! The requests go through the real layer and extractor in process (no network), so that a
//! million of them fit in CI's time; the HTTP tests elsewhere cover the same paths over
//! real sockets.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::HeaderValue;
use integration_tests::app::TestSession;
use integration_tests::inprocess::{send, service, Svc};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use session_runtime::{CookieStore, Key, MemoryStore, SessionLayer};

/// 250 cases of 1,000 tokens per path, 4 paths: 1,000,000 tokens, plus the exhaustive
/// truncations and bit flips.
const CASES: u32 = 250;
const PER_CASE: usize = 1_000;
const MAX_VALUE: usize = 64 * 1024;

#[derive(Clone, Copy, Debug)]
enum Store {
    Memory,
    Cookie,
}

#[derive(Clone, Copy, Debug)]
enum Carrier {
    Cookie,
    Header,
}

const NAME: &str = "session";
const HEADER: &str = "x-session-token";

/// One decode path, with a live session to mutate the token of.
struct Target {
    service: Box<dyn Fn() -> Svc>,
    carrier: Carrier,
    token: String,
    id: String,
}

impl Target {
    async fn new(store: Store, carrier: Carrier) -> Self {
        let layer = match store {
            Store::Memory => SessionLayer::<TestSession>::new(MemoryStore::new()),
            Store::Cookie => SessionLayer::<TestSession>::new(CookieStore::new(
                Key::from_bytes(&[3; 64]).unwrap(),
            )),
        };
        let layer = match carrier {
            Carrier::Cookie => layer.cookie_name(NAME),
            Carrier::Header => layer.header(http::HeaderName::from_static(HEADER)),
        };
        let svc = service(&layer);
        let (_, response) = send(&svc, "/visit", None).await;
        let token = match carrier {
            Carrier::Cookie => {
                let header = response.headers()["set-cookie"].to_str().unwrap();
                let first = header.split(';').next().unwrap();
                first.split_once('=').unwrap().1.to_owned()
            }
            Carrier::Header => response.headers()[HEADER].to_str().unwrap().to_owned(),
        };
        let target = Self {
            service: Box::new(move || svc.clone()),
            carrier,
            token,
            id: String::new(),
        };
        // The unmutated token works: the session is found, not new.
        let seen = target.send_raw(target.token.as_bytes(), false).await;
        assert!(!seen.is_new && seen.visits == 1, "{seen:?}");
        Self {
            id: seen.id,
            ..target
        }
    }

    /// Sends `value` as the token (under another name when `swap_name`).
    async fn send_raw(&self, value: &[u8], swap_name: bool) -> integration_tests::inprocess::Seen {
        let (name, header_value) = match self.carrier {
            Carrier::Cookie => {
                let cookie_name = if swap_name { "sessiom" } else { NAME };
                let mut bytes = format!("{cookie_name}=").into_bytes();
                bytes.extend_from_slice(value);
                ("cookie", sendable(bytes))
            }
            Carrier::Header => (
                if swap_name { "x-session-tokem" } else { HEADER },
                sendable(value.to_vec()),
            ),
        };
        send(&(self.service)(), "/read", Some((name, header_value)))
            .await
            .0
    }

    /// The token the layer reads from `value`, by the cookie grammar (whitespace around a
    /// pair, `;` between pairs and quotes around a value are syntax, not token).
    fn token_as_read(&self, value: &[u8], swap_name: bool) -> Option<Vec<u8>> {
        if swap_name {
            return None;
        }
        match self.carrier {
            Carrier::Header => Some(value.to_vec()),
            Carrier::Cookie => {
                let text = std::str::from_utf8(value).ok()?;
                let first = format!("{NAME}={text}");
                first
                    .split(';')
                    .filter_map(|pair| pair.trim().split_once('='))
                    .find(|(name, _)| *name == NAME)
                    .map(|(_, token)| token.trim_matches('"').as_bytes().to_vec())
            }
        }
    }

    /// Sends a mutated token and checks it gave a fresh session with a new id.
    async fn check(&self, value: &[u8], swap_name: bool) -> Result<(), TestCaseError> {
        if self.token_as_read(value, swap_name).as_deref() == Some(self.token.as_bytes()) {
            return Ok(()); // the mutation only changed syntax around the token
        }
        let seen = self.send_raw(value, swap_name).await;
        prop_assert_eq!(seen.status, 200, "{:?}", String::from_utf8_lossy(value));
        prop_assert!(
            seen.is_new,
            "a mutated token was accepted: {:?}",
            String::from_utf8_lossy(value)
        );
        prop_assert_ne!(&seen.id, &self.id);
        prop_assert_eq!(seen.visits, 0);
        Ok(())
    }
}

/// Header values cannot carry control characters (HTTP clients and servers refuse them),
/// so those are moved to the obs-text range: still hostile (and not UTF-8), but
/// deliverable.
fn sendable(mut bytes: Vec<u8>) -> HeaderValue {
    for byte in &mut bytes {
        if (*byte < 0x20 && *byte != b'\t') || *byte == 0x7f {
            *byte |= 0x80;
        }
    }
    HeaderValue::from_bytes(&bytes).unwrap()
}

#[derive(Clone, Debug)]
enum Mutation {
    FlipTokenBit(usize, u8),
    /// Flips a bit of the decoded bytes and encodes again: valid base64, so the crypto or
    /// id lookup is what must refuse it.
    FlipRawBit(usize, u8),
    Truncate(usize),
    StandardAlphabet,
    Padding(usize),
    Insert(usize, u8),
    Replace(usize, u8),
    Repeat(usize),
    Garbage(Vec<u8>),
    Whitespace(usize),
    SwapName,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipTokenBit(at, bit)),
        6 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipRawBit(at, bit)),
        2 => any::<usize>().prop_map(Mutation::Truncate),
        1 => Just(Mutation::StandardAlphabet),
        1 => (1usize..=3).prop_map(Mutation::Padding),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Insert(at, b)),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Replace(at, b)),
        1 => (2usize..2_000).prop_map(Mutation::Repeat),
        2 => vec(any::<u8>(), 0..256).prop_map(Mutation::Garbage),
        1 => any::<usize>().prop_map(Mutation::Whitespace),
        1 => Just(Mutation::SwapName),
    ]
}

/// The mutated token, and whether to send it under a swapped name.
fn apply(token: &str, mutation: &Mutation) -> (Vec<u8>, bool) {
    let bytes = token.as_bytes();
    let len = bytes.len();
    let mut out = bytes.to_vec();
    match mutation {
        Mutation::FlipTokenBit(at, bit) => out[at % len] ^= 1 << bit,
        Mutation::FlipRawBit(at, bit) => {
            let mut raw = URL_SAFE_NO_PAD.decode(token).unwrap();
            let at = at % raw.len();
            raw[at] ^= 1 << bit;
            out = URL_SAFE_NO_PAD.encode(raw).into_bytes();
        }
        Mutation::Truncate(at) => out.truncate(at % len),
        Mutation::StandardAlphabet => {
            out = token.replace('-', "+").replace('_', "/").into_bytes();
            if out == bytes {
                out.push(b'=');
            }
        }
        Mutation::Padding(n) => out.extend(std::iter::repeat_n(b'=', *n)),
        Mutation::Insert(at, byte) => out.insert(at % (len + 1), *byte),
        Mutation::Replace(at, byte) => out[at % len] = *byte,
        Mutation::Repeat(times) => {
            out = bytes.repeat(*times);
            out.truncate(MAX_VALUE);
        }
        Mutation::Garbage(garbage) => out.clone_from(garbage),
        Mutation::Whitespace(at) => out.insert(at % (len + 1), b' '),
        Mutation::SwapName => return (out, true),
    }
    (out, false)
}

fn run(store: Store, carrier: Carrier) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let target = runtime.block_on(Target::new(store, carrier));
    let started = Instant::now();

    // Exhaustive: every truncation, every bit of the token, every bit of the raw bytes.
    runtime.block_on(async {
        let raw = URL_SAFE_NO_PAD.decode(&target.token).unwrap();
        for len in 0..target.token.len() {
            target
                .check(&target.token.as_bytes()[..len], false)
                .await
                .unwrap();
        }
        for at in 0..target.token.len() {
            for bit in 0..8 {
                let (value, _) = apply(&target.token, &Mutation::FlipTokenBit(at, bit));
                target.check(&value, false).await.unwrap();
            }
        }
        for at in 0..raw.len() {
            for bit in 0..8 {
                let (value, _) = apply(&target.token, &Mutation::FlipRawBit(at, bit));
                target.check(&value, false).await.unwrap();
            }
        }
    });

    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let sent = std::cell::Cell::new(0usize);
    runner
        .run(&vec(mutation(), PER_CASE), |mutations| {
            runtime.block_on(async {
                for mutation in &mutations {
                    let (value, swap) = apply(&target.token, mutation);
                    target.check(&value, swap).await?;
                }
                Ok::<(), TestCaseError>(())
            })?;
            sent.set(sent.get() + mutations.len());
            Ok(())
        })
        .unwrap();
    // Shrinking only happens on failure, so every case ran exactly once.
    let sent = sent.get();
    assert_eq!(sent, CASES as usize * PER_CASE);
    eprintln!(
        "{store:?} store via {carrier:?}: {sent} mutated tokens, all fresh, in {:?}",
        started.elapsed()
    );
}

#[test]
fn mutated_cookie_store_values_via_cookie_give_fresh_sessions() {
    run(Store::Cookie, Carrier::Cookie);
}

#[test]
fn mutated_cookie_store_values_via_header_give_fresh_sessions() {
    run(Store::Cookie, Carrier::Header);
}

#[test]
fn mutated_server_ids_via_cookie_give_fresh_sessions() {
    run(Store::Memory, Carrier::Cookie);
}

#[test]
fn mutated_server_ids_via_header_give_fresh_sessions() {
    run(Store::Memory, Carrier::Header);
}
