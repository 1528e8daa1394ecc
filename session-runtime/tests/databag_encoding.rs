//! The wire format and change tracking of `#[derive(Databag)]` types.
#![allow(missing_docs, unreachable_pub)] // test items are public only so the derive sees them as API

use serde::{Deserialize, Serialize};
use session_runtime::record::{decode_fields, decode_from_bytes, encode_to_bytes};
use session_runtime::record::{DecodeError, RawField, Record};
use session_runtime::{Databag, DatabagHandle, Tracked};

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub enum Theme {
    #[default]
    Light,
    Dark,
}

#[derive(Databag, Debug, Clone, PartialEq)]
pub struct UserSession {
    #[databag(default = "guest".to_owned())]
    pub username: String,
    pub user_id: Option<u64>,
    pub visits: u32,
    #[databag(rename = "t")]
    pub theme: Theme,
    #[databag(skip, default = vec![9, 9])]
    pub scratch: Vec<u8>,
}

fn sample() -> UserSession {
    UserSession {
        username: "ada".to_owned(),
        user_id: Some(42),
        visits: 7,
        theme: Theme::Dark,
        scratch: vec![1, 2, 3],
    }
}

fn keys(record: &Record) -> Vec<&str> {
    record.fields.iter().map(|f| f.key.as_str()).collect()
}

#[test]
fn round_trip_keeps_every_stored_field() {
    let bytes = encode_to_bytes(&sample()).unwrap();
    let decoded = decode_from_bytes::<UserSession>(&bytes).unwrap();
    assert_eq!(decoded.migrated_from, None);
    assert_eq!(
        decoded.value,
        UserSession {
            scratch: vec![9, 9],
            ..sample()
        }
    );
    // The Record path gives the same bytes as the direct one.
    assert_eq!(
        Record::encode(&sample()).unwrap().to_bytes().unwrap(),
        bytes
    );
    let record = Record::from_bytes(&bytes).unwrap();
    assert_eq!(record.decode::<UserSession>().unwrap().value.visits, 7);
}

#[test]
fn direct_encoding_matches_the_record_path_at_every_bin_width() {
    // Values of 1, 8 and 16-bit `bin` lengths, around each boundary: the direct encoder
    // writes each value in place and moves it behind the header its length needs.
    for len in [0, 30, 31, 252, 253, 254, 255, 256, 300, 65_530, 65_540] {
        let session = UserSession {
            username: "x".repeat(len),
            ..sample()
        };
        let bytes = encode_to_bytes(&session).unwrap();
        assert_eq!(
            Record::encode(&session).unwrap().to_bytes().unwrap(),
            bytes,
            "username of {len} bytes"
        );
        let decoded = decode_from_bytes::<UserSession>(&bytes).unwrap();
        assert_eq!(decoded.value.username.len(), len);
    }
}

#[test]
fn defaults_apply_to_every_field() {
    let defaults = UserSession::defaults();
    assert_eq!(defaults.username, "guest");
    assert_eq!(defaults.user_id, None);
    assert_eq!(defaults.visits, 0);
    assert_eq!(defaults.theme, Theme::Light);
    assert_eq!(defaults.scratch, [9, 9]);
}

#[test]
fn missing_field_takes_its_declared_default() {
    let mut record = Record::encode(&sample()).unwrap();
    record
        .fields
        .retain(|f| f.key != "username" && f.key != "visits");
    let value = record.decode::<UserSession>().unwrap().value;
    assert_eq!(value.username, "guest");
    assert_eq!(value.visits, 0);
    assert_eq!(value.user_id, Some(42));
}

#[test]
fn unknown_field_is_ignored() {
    let mut record = Record::encode(&sample()).unwrap();
    record.fields.push(session_runtime::record::RecordField {
        key: "removed_in_v2".to_owned(),
        value: vec![0xc1], // not even valid MessagePack: never looked at
    });
    let bytes = record.to_bytes().unwrap();
    let value = decode_from_bytes::<UserSession>(&bytes).unwrap().value;
    assert_eq!(value.username, "ada");
}

#[test]
fn rename_is_used_on_the_wire() {
    let record = Record::encode(&sample()).unwrap();
    assert_eq!(keys(&record), ["username", "user_id", "visits", "t"]);
    let bytes = record.to_bytes().unwrap();
    assert!(!contains(&bytes, b"theme"));
    assert_eq!(
        UserSession::FIELDS[3],
        session_runtime::Field {
            name: "theme",
            key: "t"
        }
    );
}

#[test]
fn skipped_field_is_absent_from_the_bytes() {
    let mut value = sample();
    value.scratch = b"SCRATCH-MARKER".to_vec();
    let bytes = encode_to_bytes(&value).unwrap();
    assert!(!contains(&bytes, b"scratch"));
    assert!(!contains(&bytes, b"SCRATCH-MARKER"));
    assert_eq!(UserSession::FIELDS.len(), 4);
}

#[test]
fn wire_format_is_stable() {
    // [1, {"visits": bin(0x07)}]: pinned so that a record written today reads tomorrow.
    #[derive(Databag)]
    struct Small {
        visits: u32,
    }
    let bytes = encode_to_bytes(&Small { visits: 7 }).unwrap();
    assert_eq!(
        bytes,
        [0x92, 0x01, 0x81, 0xa6, b'v', b'i', b's', b'i', b't', b's', 0xc4, 0x01, 0x07]
    );
    let _ = Small::defaults().visits;
}

#[test]
fn field_of_the_wrong_type_is_an_error() {
    let mut record = Record::encode(&sample()).unwrap();
    let visits = record
        .fields
        .iter_mut()
        .find(|f| f.key == "visits")
        .unwrap();
    visits.value = rmp_serde::to_vec("not a number").unwrap();
    let error = record.decode::<UserSession>().unwrap_err();
    assert!(
        matches!(error, DecodeError::Field { key: "visits", .. }),
        "{error}"
    );
}

#[test]
fn newer_version_is_an_error_naming_both_versions() {
    let mut record = Record::encode(&sample()).unwrap();
    record.version = 5;
    let error = record.decode::<UserSession>().unwrap_err();
    assert!(matches!(
        error,
        DecodeError::NewerVersion {
            found: 5,
            current: 1,
            ..
        }
    ));
    assert!(error.to_string().contains("version 5"), "{error}");
}

#[test]
fn malformed_bytes_are_errors_at_every_truncation() {
    let bytes = encode_to_bytes(&sample()).unwrap();
    for len in 0..bytes.len() {
        let result = decode_from_bytes::<UserSession>(&bytes[..len]);
        assert!(
            matches!(result, Err(DecodeError::Malformed { .. })),
            "truncated at {len}"
        );
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(decode_from_bytes::<UserSession>(&trailing).is_err());
    // A map header claiming 2^32-1 entries in a 10-byte input is refused before allocating.
    let lie = [0x92, 0x01, 0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, b'a', 0xc0];
    assert!(matches!(
        decode_from_bytes::<UserSession>(&lie),
        Err(DecodeError::Malformed { .. })
    ));
    assert!(decode_from_bytes::<UserSession>(b"not msgpack at all").is_err());
}

#[test]
fn setters_mark_only_their_field() {
    let mut session = UserSessionHandle::new(sample());
    assert!(!session.is_changed());
    session.set_visits(session.visits + 1);
    assert_eq!(session.visits, 8);
    assert_eq!(names(&session), ["visits"]);

    session.update_username(|name| name.push('!'));
    session.theme_mut().clone_from(&Theme::Light);
    assert_eq!(names(&session), ["username", "visits", "theme"]);
    assert_eq!(session.username, "ada!");
}

#[test]
fn mut_accessor_marks_the_field_even_if_unused() {
    let mut session = UserSessionHandle::new(sample());
    let _ = session.user_id_mut();
    assert_eq!(names(&session), ["user_id"]);
}

#[test]
fn skipped_field_writes_are_not_tracked() {
    let mut session = UserSessionHandle::new(sample());
    session.set_scratch(vec![1]);
    session.scratch_mut().push(2);
    session.update_scratch(|s| s.push(3));
    assert_eq!(session.scratch, [1, 2, 3]);
    assert!(!session.is_changed());
}

#[test]
fn only_changed_fields_are_encoded_and_reset_clears_tracking() {
    let mut session = UserSessionHandle::new(sample());
    session.set_user_id(None);
    let changes = Record::changes(session.tracked()).unwrap();
    assert_eq!(keys(&changes), ["user_id"]);

    session.tracked_mut().reset_changes();
    assert!(!session.is_changed());
    assert!(Record::changes(session.tracked())
        .unwrap()
        .fields
        .is_empty());
}

#[test]
fn merge_applies_changes_field_by_field() {
    let stored = Record::encode(&sample()).unwrap();
    // Two requests loaded the same record and changed different fields.
    let mut first = UserSessionHandle::new(stored.decode::<UserSession>().unwrap().value);
    let mut second = UserSessionHandle::new(stored.decode::<UserSession>().unwrap().value);
    first.set_visits(100);
    second.set_username("grace".to_owned());

    let mut merged = stored.clone();
    merged.merge(Record::changes(first.tracked()).unwrap());
    merged.merge(Record::changes(second.tracked()).unwrap());
    let value = merged.decode::<UserSession>().unwrap().value;
    assert_eq!(value.visits, 100);
    assert_eq!(value.username, "grace");
    assert_eq!(merged.fields.len(), stored.fields.len());
}

#[test]
fn tracking_works_for_one_hundred_fields() {
    macro_rules! wide {
        ($($f:ident)*) => {
            #[derive(Databag)]
            pub struct Wide { $(pub $f: u16,)* }
        };
    }
    wide!(
        f00 f01 f02 f03 f04 f05 f06 f07 f08 f09 f10 f11 f12 f13 f14 f15 f16 f17 f18 f19
        f20 f21 f22 f23 f24 f25 f26 f27 f28 f29 f30 f31 f32 f33 f34 f35 f36 f37 f38 f39
        f40 f41 f42 f43 f44 f45 f46 f47 f48 f49 f50 f51 f52 f53 f54 f55 f56 f57 f58 f59
        f60 f61 f62 f63 f64 f65 f66 f67 f68 f69 f70 f71 f72 f73 f74 f75 f76 f77 f78 f79
        f80 f81 f82 f83 f84 f85 f86 f87 f88 f89 f90 f91 f92 f93 f94 f95 f96 f97 f98 f99
    );
    let mut wide = WideHandle::new(Wide::defaults());
    wide.set_f00(1);
    wide.set_f63(63);
    wide.set_f64(64);
    wide.set_f99(wide.f99 + 99);
    let changed: Vec<&str> = wide.changed_fields().map(|f| f.name).collect();
    assert_eq!(changed, ["f00", "f63", "f64", "f99"]);

    let changes = Record::changes(wide.tracked()).unwrap();
    let mut stored = Record::encode(&Wide::defaults()).unwrap();
    stored.merge(changes);
    let value = stored.decode::<Wide>().unwrap().value;
    assert_eq!(
        (value.f00, value.f63, value.f64, value.f99, value.f50),
        (1, 63, 64, 99, 0)
    );

    let mut tracked = wide.into_tracked();
    tracked.reset_changes();
    assert!(!tracked.is_changed());
    tracked.mark_all_changed();
    assert_eq!(tracked.changes().len(), 100);
}

mod versions {
    use super::*;

    #[derive(Databag, Debug)]
    pub struct V1 {
        pub visits: u32,
        pub name: String,
    }

    #[derive(Databag, Debug)]
    #[databag(version = 2, migrate_from = V1)]
    pub struct V2 {
        pub visits: u64,
        pub display_name: String,
    }

    impl From<V1> for V2 {
        fn from(old: V1) -> Self {
            Self {
                visits: old.visits.into(),
                display_name: old.name,
            }
        }
    }

    #[derive(Databag, Debug)]
    #[databag(version = 3, migrate_from = V2)]
    pub struct V3 {
        pub visits: u64,
        #[databag(rename = "display_name")]
        pub name: String,
        #[databag(default = true)]
        pub beta: bool,
    }

    impl From<V2> for V3 {
        fn from(old: V2) -> Self {
            Self {
                visits: old.visits,
                name: old.display_name,
                beta: false,
            }
        }
    }

    /// Has no `migrate_from`: older records have no path.
    #[derive(Databag, Debug)]
    #[databag(version = 2)]
    pub struct Fresh {
        pub visits: u64,
    }

    #[test]
    fn old_records_migrate_step_by_step() {
        let v1 = encode_to_bytes(&V1 {
            visits: 3,
            name: "ada".to_owned(),
        })
        .unwrap();
        let decoded = decode_from_bytes::<V3>(&v1).unwrap();
        assert_eq!(decoded.migrated_from, Some(1));
        assert_eq!(decoded.value.visits, 3);
        assert_eq!(decoded.value.name, "ada");
        assert!(!decoded.value.beta);
        // A migrated value is written back whole, in the current version.
        let tracked: Tracked<V3> = decoded.into_tracked();
        assert_eq!(tracked.changes().len(), V3::FIELDS.len());
        assert_eq!(Record::changes(&tracked).unwrap().version, 3);
    }

    #[test]
    fn record_without_migration_path_is_an_error() {
        let v1 = encode_to_bytes(&V1 {
            visits: 3,
            name: "ada".to_owned(),
        })
        .unwrap();
        let error = decode_from_bytes::<Fresh>(&v1).unwrap_err();
        assert!(matches!(
            error,
            DecodeError::NoMigrationPath {
                found: 1,
                current: 2,
                ..
            }
        ));
        let fields = [RawField {
            key: "visits",
            value: &[0x01],
        }];
        assert!(decode_fields::<V3>(0, &fields).is_err());
    }
}

fn names(session: &UserSessionHandle) -> Vec<&'static str> {
    session.changed_fields().map(|f| f.name).collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
