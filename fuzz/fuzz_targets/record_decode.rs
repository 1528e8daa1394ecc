//! Any bytes as a stored record, decoded into a session type with nested and recursive
//! fields. Must never panic, overflow the stack, or allocate in proportion to a claim.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use serde::{Deserialize, Serialize};
use session_runtime::Databag;

#[derive(Debug, Default, Serialize, Deserialize)]
pub enum Tree {
    #[default]
    Leaf,
    Node(Vec<Tree>),
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Inner {
    pub name: String,
    pub tags: Vec<String>,
}

#[derive(Databag, Debug)]
pub struct Fuzzed {
    pub visits: u64,
    pub user: Option<Inner>,
    pub map: BTreeMap<String, i64>,
    pub tree: Tree,
    #[databag(rename = "b")]
    pub blob: Vec<u8>,
}

fuzz_target!(|data: &[u8]| {
    let _ = session_runtime::record::decode_from_bytes::<Fuzzed>(data);
    if let Ok(record) = session_runtime::record::Record::from_bytes(data) {
        let _ = record.decode::<Fuzzed>();
        // What parses re-frames to something that parses again.
        let again = session_runtime::record::Record::from_bytes(&record.to_bytes().unwrap()).unwrap();
        assert_eq!(again, record);
    }
});
