//! Any bytes as a session token: as a server-store id and as a sealed cookie value. Must
//! never panic; a random input must never open.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_runtime::{CookieStore, Key, SessionId};

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(id) = SessionId::parse(token) {
        // Only canonical encodings parse: the id prints back as the same token.
        assert_eq!(id.expose_token(), token);
    }
    let store = CookieStore::new(Key::from_bytes(&[7; 64]).unwrap());
    assert!(!session_runtime::__private::fuzz_open_cookie(&store, "session", token, 0));
});
